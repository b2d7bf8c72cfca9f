"""PAPI loader (mirror, checksum), Big-Five scoring with reverse keys, group summaries, pairs from ratings."""
import shutil

import numpy as np
import pandas as pd
import pytest

from plural_kit.data import (
    DataChecksumError,
    data_home,
    load_papi,
    make_papi_preferences,
)
from plural_kit.data import home as data_home_module
from plural_kit.data.papi import (
    DOMAINS,
    IPIP120_ITEMS,
    PAPI,
    domain_distributions,
    group_summaries,
    keyed_answers,
    personality_scores,
    plot_domain_scores,
    user_covariates,
)


@pytest.fixture(scope="module")
def papi():
    return load_papi()


def test_loader_on_the_mirror(papi):
    people = papi.people
    assert len(people) == 300 and people["person"].is_unique
    assert (people["country"] == "USA").sum() == 235                       # MANIFEST: USA 235
    assert people["sex"].value_counts().to_dict() == {"female": 203, "male": 97}
    assert list(papi.answers.columns) == ["person", "sex", "age", "country", "item", "answer"]
    assert papi.answers["answer"].between(1, 5).all()
    assert len(papi.answers) == 300 * 300 - 52                            # 52 zeros = not answered, dropped
    items = papi.items
    assert list(items["item"]) == [f"i{k}" for k in range(1, 301)]
    assert items["domain"].value_counts().to_dict() == {d: 60 for d in DOMAINS}
    assert items.groupby("domain")["facet"].nunique().eq(6).all()
    assert items["short_form"].sum() == 120 == len(set(IPIP120_ITEMS))
    assert items.set_index("item").loc["i1", "text"] == "Worry about things."
    assert set(items.loc[items["short_form"], "item"]) == {f"i{k}" for k in IPIP120_ITEMS}


def test_loader_reads_registered_files_with_checksums():
    reg = data_home_module.registry()
    for rel in ("papi/Test-set.json", "papi/mpi_300.csv"):
        assert reg[rel]["url"].startswith(
            "https://raw.githubusercontent.com/zhu-minjun/PAlign/18e1e3404951acc864f30f323a0e47a0840b474a/PAPI/")
        assert len(reg[rel]["sha256"]) == 64
        data_home_module.verify(data_home() / rel, rel)                    # the mirror's copy matches


def test_corrupted_copy_is_refused(tmp_path):
    home = tmp_path / "home"
    (home / "papi").mkdir(parents=True)
    shutil.copy(data_home() / "papi" / "mpi_300.csv", home / "papi" / "mpi_300.csv")
    raw = (data_home() / "papi" / "Test-set.json").read_bytes()
    damaged = raw.replace(b'"i1":3', b'"i1":4', 1)
    assert damaged != raw and len(damaged) == len(raw)
    (home / "papi" / "Test-set.json").write_bytes(damaged)
    with pytest.raises(DataChecksumError, match="papi/Test-set.json"):
        load_papi(data_home=home)


def test_the_item_mapping_matches_the_answers(papi):
    """Items of one domain agree with each other (keyed): the mapping of rows to item numbers is right."""
    keyed = papi.matrix(keyed=True)
    domain = papi.items.set_index("item")["domain"]
    corr = []
    for d in DOMAINS:
        cols = domain.index[domain == d]
        total = keyed[cols].mean(axis=1)
        corr.append(np.mean([keyed[c].corr(total) for c in cols]))
    assert min(corr) > 0.4
    rev = papi.items.set_index("text")
    worry, relaxed = rev.loc["Worry about things.", "item"], rev.loc["Am relaxed most of the time.", "item"]
    raw = papi.matrix()
    assert raw[worry].corr(raw[relaxed]) < -0.2                            # raw answers: opposite statements


def _respondent() -> PAPI:
    items = pd.DataFrame({"item": ["i1", "i2", "i3", "i4", "i5", "i6"], "text": list("abcdef"),
                          "facet": ["f1", "f1", "f2", "g1", "g1", "g2"], "domain": ["N", "N", "N", "E", "E", "E"],
                          "key": [1, -1, 1, 1, -1, -1], "short_form": [True] * 6})
    answers = pd.DataFrame({"person": 7, "sex": "female", "age": 30, "country": "UK", "item": items["item"],
                            "answer": [5, 1, 3, 2, 4, 5]})
    return PAPI(answers, items)


def test_scoring_by_hand_with_reverse_keys():
    data = _respondent()
    # by hand: keyed = answer (+) or 6 - answer (-)
    # N: 5, 6-1=5, 3 -> 13/3 ; E: 2, 6-4=2, 6-5=1 -> 5/3
    dom = personality_scores(data).iloc[0]
    assert dom["N"] == pytest.approx(13 / 3) and dom["E"] == pytest.approx(5 / 3)
    assert np.isnan(dom["O"])
    facet = personality_scores(data, level="facet").iloc[0]
    assert facet.to_dict() == pytest.approx({"f1": 5.0, "f2": 3.0, "g1": 2.0, "g2": 1.0})
    arr = keyed_answers(np.array([[5, 1, 3]]), np.array([1, -1, -1]))
    assert arr.tolist() == [[5, 5, 3]]
    with pytest.raises(ValueError, match="keys"):
        keyed_answers(np.array([[5, 1, 3]]), np.array([1, -1]))
    with pytest.raises(ValueError, match="level"):
        personality_scores(data, level="item")


def test_group_summaries(papi):
    by_sex = group_summaries(papi, "sex", n_boot=200)
    assert set(by_sex["sex"]) == {"female", "male"} and len(by_sex) == 10
    assert (by_sex["ci_low"] <= by_sex["mean"]).all() and (by_sex["mean"] <= by_sex["ci_high"]).all()
    scores = personality_scores(papi)
    female = papi.people["sex"].to_numpy() == "female"
    row = by_sex.set_index(["sex", "domain"]).loc[("female", "N")]
    assert row["mean"] == pytest.approx(scores["N"].to_numpy()[female].mean())
    assert row["n"] == 203
    assert group_summaries(papi, "sex", n_boot=200).equals(by_sex)          # seeded
    countries = domain_distributions(papi, "country", min_size=9)
    assert set(countries["country"]) == {"USA", "Canada", "UK", "Australia"}
    ages = group_summaries(papi, "age", n_boot=100)
    assert ages.groupby("age")["n"].first().sum() == 300
    with pytest.raises(ValueError, match="by must be"):
        group_summaries(papi, "height")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_domain_scores(papi, by_sex, ax=ax) is ax and "mean of female / male" in ax.get_legend_handles_labels()[1]
    plt.close(fig)


def test_pairs_derived_from_ratings(papi):
    prefs = make_papi_preferences(papi, n_people=10, n_unseen=4, n_train_pairs=30, n_test_pairs=10, n_adapt_pairs=8,
                                  seed=3)
    assert set(prefs["split"]) == {"train", "test", "unseen_adapt", "unseen_test"}
    assert prefs["user"].nunique() == 14
    seen = set(prefs.loc[prefs["split"] == "train", "user"])
    assert seen.isdisjoint(prefs.loc[prefs["split"].str.startswith("unseen"), "user"])
    train_items = set(prefs.loc[prefs["split"].isin(["train", "unseen_adapt"]), ["chosen_item", "rejected_item"]].stack())
    test_items = set(prefs.loc[prefs["split"].isin(["test", "unseen_test"]), ["chosen_item", "rejected_item"]].stack())
    assert train_items.isdisjoint(test_items)                              # held-out items are new statements
    raw = papi.matrix()
    person = prefs["user"].str[1:].astype(int)
    chosen = raw.to_numpy()[raw.index.get_indexer(person), raw.columns.get_indexer(prefs["chosen_item"])]
    rejected = raw.to_numpy()[raw.index.get_indexer(person), raw.columns.get_indexer(prefs["rejected_item"])]
    assert (chosen > rejected).all()                                       # higher rating wins, no ties
    assert np.array_equal(chosen - rejected, prefs["margin"].to_numpy())
    text = papi.items.set_index("item")["text"]
    assert (prefs["chosen"].to_numpy() == text.loc[prefs["chosen_item"]].to_numpy()).all()
    again = make_papi_preferences(papi, n_people=10, n_unseen=4, n_train_pairs=30, n_test_pairs=10, n_adapt_pairs=8,
                                  seed=3)
    pd.testing.assert_frame_equal(prefs, again)
    with pytest.raises(ValueError, match="exceeds"):
        make_papi_preferences(papi, n_people=290, n_unseen=20)


def test_user_covariates_match_the_preference_users(papi):
    who = user_covariates(papi)
    assert list(who.columns) == ["sex", "age", "country", *DOMAINS] and len(who) == 300
    prefs = make_papi_preferences(papi, n_people=6, n_unseen=2, seed=1)
    first = prefs.groupby("user")[["sex", "age"]].first()
    pd.testing.assert_frame_equal(who.loc[first.index, ["sex", "age"]], first, check_dtype=False)
    person = int(first.index[0][1:])
    assert who.loc[first.index[0], "N"] == pytest.approx(personality_scores(papi).loc[person, "N"])
