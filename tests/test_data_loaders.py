"""Every real-data loader on the mirror (PLURAL_KIT_DATA_HOME, set by conftest.py)."""
from __future__ import annotations

import re
import sys
import types

import numpy as np
import pandas as pd
import pytest

import plural_kit.data as pkd
from plural_kit.data import surveys
from plural_kit.results import check_result


# ------------------------------------------------------------------ surveys
def test_mfq2_items():
    items = pkd.load_mfq2_items()
    assert list(items.columns) == ["item", "foundation", "text"]
    assert len(items) == 36 and list(items["item"]) == list(range(1, 37))
    assert items["foundation"].value_counts().to_dict() == {f: 6 for f in pkd.FOUNDATIONS}
    assert items["text"].str.len().min() > 10


def test_loaders_return_copies():
    a = pkd.load_mfq2_items()
    a.loc[0, "text"] = "changed"
    assert pkd.load_mfq2_items().loc[0, "text"] != "changed"
    d = pkd.country_foundation_distributions()
    d.loc[0, "scores"][0] = -99.0
    assert pkd.country_foundation_distributions().loc[0, "scores"][0] != -99.0


def test_d3code_raters():
    r = pkd.load_d3code_raters()
    assert r.shape == (4309, 12)  # MANIFEST: 4,309 raters
    assert list(r.columns[:6]) == ["rater_id", "age", "gender", "region", "country", "ses"]
    assert r["country"].nunique() == 21 and r["region"].nunique() == 8
    counts = r["country"].value_counts()
    assert counts["India"] == 444 and counts["South Korea"] == 43 and counts["Qatar"] == 57  # MANIFEST
    assert r["rater_id"].is_unique


def test_country_foundation_distributions():
    d = pkd.country_foundation_distributions()
    assert list(d.columns) == ["country", "region", "foundation", "n", "mean", "sd", "sem", "scores"]
    assert len(d) == 21 * 6
    raters = pkd.load_d3code_raters()
    india_care = d[(d.country == "India") & (d.foundation == "care")].iloc[0]
    raw = raters.loc[raters.country == "India", "care"].to_numpy()
    assert india_care.n == 444 and india_care.region == "Indian Cultural Sphere"
    np.testing.assert_allclose(india_care.scores, raw)
    assert india_care["mean"] == pytest.approx(raw.mean())
    assert india_care.sd == pytest.approx(raw.std(ddof=1))
    assert d.groupby("country")["n"].first().sum() == 4309
    # MANIFEST's region means: Western Europe 3.90/2.88/3.60/3.19/2.87/2.36 (care, equality,
    # proportionality, authority, loyalty, purity)
    reg = pkd.country_foundation_distributions(by="region").set_index(["region", "foundation"])["mean"]
    we = [reg[("Western Europe", f)] for f in ("care", "equality", "proportionality", "authority", "loyalty", "purity")]
    np.testing.assert_allclose(we, [3.90, 2.88, 3.60, 3.19, 2.87, 2.36], atol=0.006)
    with pytest.raises(ValueError, match="by must be"):
        pkd.country_foundation_distributions(by="continent")


def test_seegull_tidy():
    g = pkd.load_seegull()
    assert len(g) == 2 * 6781 and g["identity"].nunique() == 176  # MANIFEST
    assert set(g["annotators"]) == {"in_region", "north_america"}
    assert (g["n_votes"] == g[["stereo", "nonstereo", "unsure"]].sum(axis=1)).all()
    assert g["p_stereo"].between(0, 1).all()
    wide = pkd.load_seegull(tidy=False)
    first = wide.iloc[0]
    rows = g[(g.identity == first.identity) & (g.attribute == first.attribute)]
    assert rows.set_index("annotators").loc["in_region", "stereo"] == first.in_region_stereo
    assert rows.set_index("annotators").loc["north_america", "stereo"] == first.north_america_stereo
    assert g.loc[g.identity == "Canadian", "na_copied"].all()
    assert not g.loc[g.identity == "Zimbabwean", "na_copied"].any()
    us = pkd.load_seegull("us_states")
    assert len(us) == 468 and set(us["annotators"]) == {"in_region"}
    assert len(pkd.load_seegull("indian_states")) == 39
    with pytest.raises(ValueError, match="which must be"):
        pkd.load_seegull("mars")


SELECTIONS = "defaultdict(<class 'list'>, {'Belgium': [0.5, 0.3, 0.2], 'Nigeria': [0.1, 0.1, 0.8], 'Odd': [1.0]})"


def test_parse_selections_and_global_opinions():
    assert surveys.parse_selections(SELECTIONS)["Nigeria"] == [0.1, 0.1, 0.8]
    with pytest.raises(ValueError, match="cannot parse"):
        surveys.parse_selections("defaultdict(<class 'list'>, {'A': [__import__('os')]})")
    raw = pd.DataFrame(
        {"question": ["Q?"], "selections": [SELECTIONS], "options": ["['Yes', 'No', \"Don't know\"]"], "source": ["GAS"]}
    )
    tidy = pkd.parse_global_opinions(raw)
    assert list(tidy["country"]) == ["Belgium", "Nigeria"]  # 'Odd' has the wrong length: dropped
    assert tidy.loc[0, "options"] == ["Yes", "No", "Don't know"]
    np.testing.assert_allclose(tidy.loc[1, "distribution"], [0.1, 0.1, 0.8])
    with pytest.raises(ValueError, match="lacks columns"):
        pkd.parse_global_opinions(raw.drop(columns="options"))


def test_global_opinion_qa_without_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install .*datasets.*non-commercial"):
        pkd.load_global_opinion_qa()


def test_global_opinion_qa_with_fake_datasets(monkeypatch, tmp_path):
    fake = types.ModuleType("datasets")
    calls = []

    def load_dataset(name, split, cache_dir=None):
        calls.append(name)
        if name == "Anthropic/llm_global_opinions":
            raise ConnectionError("offline")
        return pd.DataFrame(
            {"question": ["Q?"], "selections": [SELECTIONS], "options": ["['a', 'b', 'c']"], "source": ["WVS"]}
        )

    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(ConnectionError, match="Hugging Face Hub"):
        pkd.load_global_opinion_qa(data_home=tmp_path)
    (tmp_path / "llm_global_opinions").mkdir()
    out = pkd.load_global_opinion_qa(data_home=tmp_path)
    assert calls[-1] == str((tmp_path / "llm_global_opinions").resolve())
    assert len(out) == 2 and out["source"].eq("WVS").all()


# ------------------------------------------------------------------ persona
def test_persona_traits_and_statements():
    traits = pkd.list_persona_traits()
    assert len(traits) == 135 and "agreeableness" in traits  # README: 135 files
    p = pkd.load_persona(["agreeableness", "narcissism"])
    assert list(p.columns) == [
        "trait", "statement", "question", "answer_matching_behavior",
        "answer_not_matching_behavior", "label_confidence", "agrees",
    ]
    assert p["trait"].value_counts().to_dict() == {"agreeableness": 1000, "narcissism": 1000}
    assert set(p["answer_matching_behavior"]) == {" Yes", " No"}
    assert (p["agrees"] == p["answer_matching_behavior"].eq(" Yes")).all()
    row = p[p.statement == "I enjoy causing pain to others"].iloc[0]
    assert row.trait == "agreeableness" and not row.agrees
    assert len(pkd.load_persona("agreeableness", min_label_confidence=0.97)) < 1000
    with pytest.raises(ValueError, match="did you mean"):
        pkd.load_persona("agreeablenes")


def test_persona_all():
    assert len(pkd.load_persona()) == 133204  # all 135 files


def _truth(traits):
    p = pkd.load_persona(list(traits))
    return {(t, s): a for t, s, a in zip(p.trait, p.statement, p.agrees)}


def test_persona_preferences_follow_traits():
    df = pkd.make_persona_preferences(seed=3)
    pkd.validate_preferences(df, require=("group",))
    truth = _truth(pkd.DEFAULT_TRAITS)
    # every chosen statement matches the group's polarity on the pair's trait; rejected does not
    for row in df.itertuples():
        want = row.polarity > 0
        assert truth[(row.trait, row.chosen)] == want and truth[(row.trait, row.rejected)] != want
        assert row.trait in row.group_traits
    assert not df["flipped"].any()
    assert df["group_traits"].nunique() == 4 and df.groupby("group")["group_traits"].nunique().eq(1).all()


def test_persona_preferences_splits():
    df = pkd.make_persona_preferences(
        n_groups=3, users_per_group=4, unseen_users_per_group=2, n_train_pairs=10, n_test_pairs=6, n_adapt_pairs=8
    )
    seen = set(df.loc[df.split.isin(["train", "test"]), "user"])
    unseen = set(df.loc[df.split.isin(["unseen_adapt", "unseen_test"]), "user"])
    assert len(seen) == 12 and len(unseen) == 6 and not seen & unseen
    counts = df.groupby(["user", "split"]).size()
    assert set(counts.xs("train", level="split")) == {10} and set(counts.xs("unseen_adapt", level="split")) == {8}
    assert set(counts.xs("test", level="split")) == {6} and set(counts.xs("unseen_test", level="split")) == {6}
    assert df.groupby("user")["group"].nunique().max() == 1
    # test statements are held out from the training statements
    train_text = set(df.loc[df.split.isin(["train", "unseen_adapt"]), ["chosen", "rejected"]].to_numpy().ravel())
    test_text = set(df.loc[df.split.isin(["test", "unseen_test"]), ["chosen", "rejected"]].to_numpy().ravel())
    assert not train_text & test_text


def test_persona_splits_read_the_pairs_by_split():
    rows = [("u0", "a", "b", 0, "train", False, "+x"), ("u0", "c", "a", 0, "test", True, "+x"),
            ("u1", "b", "d", 1, "train", False, "-x"), ("u2", "e", "a", 1, "unseen_test", True, "-x")]
    pairs = pd.DataFrame(rows, columns=["user", "chosen", "rejected", "group", "split", "flipped", "group_traits"])
    splits = pkd.PersonaSplits(pairs.assign(trait="x"))
    check_result(splits)
    assert list(splits["train"]["user"]) == ["u0", "u1"] and splits.traits == ["x"]
    assert list(splits.statements()) == ["a", "c", "b", "e", "d"]  # chosen in table order, then new rejected ones
    assert list(splits.statements("train")) == ["a", "b", "d"]
    np.testing.assert_array_equal(splits.oracle("test"), [0.0])  # a flipped label: the oracle's winner lost
    np.testing.assert_array_equal(splits.oracle("train"), [1.0, 1.0])
    assert list(splits.group_labels("train")) == ["0: +x", "1: -x"]
    assert splits.user_groups.to_dict() == {"u0": 0, "u1": 1, "u2": 1}
    frame = splits.to_frame()
    assert list(frame.index) == ["train", "test", "unseen_test"] and list(frame["users"]) == [2, 1, 1]
    assert str(splits.summary()) == f"{frame.to_string()}\ndistinct statements to embed: 5"
    assert splits.to_dict() == {"groups": {"0": "+x", "1": "-x"}, "n_statements": 5,
                                "splits": {"split": ["train", "test", "unseen_test"], "users": [2, 1, 1],
                                           "pairs": [2, 1, 1]}}
    assert "u1" in str(splits.examples()) and "u2" not in str(splits.examples())  # first training pair per group
    with pytest.raises(KeyError, match="no split"):
        splits["validation"]
    with pytest.raises(ValueError, match="lack columns"):
        pkd.PersonaSplits(pairs)


def test_persona_splits_of_generated_preferences():
    df = pkd.make_persona_preferences(n_groups=2, users_per_group=2, unseen_users_per_group=1, n_train_pairs=4,
                                      n_test_pairs=3, n_adapt_pairs=2, seed=0)
    splits = pkd.PersonaSplits(df)
    assert dict(zip(splits.to_frame().index, splits.to_frame()["pairs"])) == {
        "train": 16, "test": 12, "unseen_adapt": 4, "unseen_test": 6}
    assert set(splits.statements()) == set(df["chosen"]) | set(df["rejected"])
    assert not set(splits.statements("train")) & set(splits.statements("test"))  # held-out statements


def test_persona_preferences_seed_noise_groups():
    a = pkd.make_persona_preferences(seed=1, noise=0.2)
    pd.testing.assert_frame_equal(a, pkd.make_persona_preferences(seed=1, noise=0.2))
    assert not a.equals(pkd.make_persona_preferences(seed=2, noise=0.2))
    assert 0.12 < a["flipped"].mean() < 0.28
    truth = _truth(pkd.DEFAULT_TRAITS)
    match = [truth[(r.trait, r.chosen)] == (r.polarity > 0) for r in a.itertuples()]
    np.testing.assert_array_equal(match, ~a["flipped"].to_numpy())
    g = [{"agreeableness": 1}, {"agreeableness": -1}]
    b = pkd.make_persona_preferences(["agreeableness"], groups=g, users_per_group=2, prompt="Which would you say?")
    assert b["prompt"].eq("Which would you say?").all()
    assert set(b["group_traits"]) == {"+agreeableness", "-agreeableness"}
    agrees = _truth(["agreeableness"])
    chosen_agrees = np.array([agrees[("agreeableness", c)] for c in b["chosen"]])
    np.testing.assert_array_equal(chosen_agrees, b["group"].to_numpy() == 0)  # the two groups disagree
    with pytest.raises(ValueError, match="n_groups must be"):
        pkd.make_persona_preferences(["agreeableness"], n_groups=3, traits_per_group=1)
    with pytest.raises(ValueError, match="polarities"):
        pkd.make_persona_preferences(["agreeableness"], groups=[{"agreeableness": 2}])
    with pytest.raises(ValueError, match="noise"):
        pkd.make_persona_preferences(noise=0.7)


# ------------------------------------------------------------------ HH-RLHF
def test_hh_rlhf():
    hh = pkd.load_hh_rlhf()
    assert len(hh) == 2312  # README: 2,312 pairs
    pkd.validate_preferences(hh, require=("prompt",))
    assert list(hh.columns) == ["user", "chosen", "rejected", "prompt", "chosen_dialogue", "rejected_dialogue", "pair_id"]
    assert hh["user"].eq("hh-rlhf").all()
    assert hh["prompt"].str.startswith("\n\nHuman:").all() and hh["prompt"].str.endswith("\n\nAssistant:").all()
    for r in hh.itertuples():  # prompt + final turn gives back the published dialogues
        assert r.chosen_dialogue.startswith(r.prompt) and r.rejected_dialogue.startswith(r.prompt)
        assert r.chosen_dialogue[len(r.prompt):].strip() == r.chosen
        assert r.rejected_dialogue[len(r.prompt):].strip() == r.rejected
    # a response that itself contains "Assistant:" stays whole (line 1255 of the file)
    odd = hh.set_index("pair_id").loc[1254]
    assert odd.prompt.count("\n\nAssistant:") == 2
    assert pkd.load_hh_rlhf(user="crowd")["user"].eq("crowd").all()


def test_hh_rlhf_errors(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        pkd.load_hh_rlhf(split="dev")
    with pytest.raises(ValueError, match="subset must be"):
        pkd.load_hh_rlhf(subset="red-team")
    with pytest.raises(pkd.DataNotFoundError, match="helpful-base/train.jsonl.gz"):
        pkd.load_hh_rlhf("train", "helpful-base", data_home=tmp_path)


# ------------------------------------------------------------------ probe inputs
@pytest.mark.parametrize(
    ("kind", "split", "n", "sources"),
    [
        ("harmful", "train", 260, {"AdvBench", "MaliciousInstruct", "TDC2023"}),
        ("harmful", "val", 39, {"HarmBench"}),
        ("harmful", "test", 572, {"JailbreakBench", "HarmBench", "StrongREJECT"}),
        ("harmless", "train", 18793, {"Alpaca"}),
        ("harmless", "val", 6264, {"Alpaca"}),
        ("harmless", "test", 6266, {"Alpaca"}),
    ],
)
def test_refusal_prompts(kind, split, n, sources):  # counts: refusal_direction_prompts/MANIFEST.md
    d = pkd.load_refusal_prompts(kind, split)
    assert list(d.columns) == ["instruction", "category", "source", "split", "kind"]
    assert len(d) == n and set(d["source"]) == sources
    assert d["instruction"].str.len().min() > 0 and (d["split"] == split).all() and (d["kind"] == kind).all()


def test_refusal_prompt_sources():
    test = pkd.load_refusal_prompts("harmful", "test")["source"].value_counts().to_dict()
    assert test == {"JailbreakBench": 100, "HarmBench": 159, "StrongREJECT": 313}  # MANIFEST
    train = pkd.load_refusal_prompts("harmful", "train")
    assert (train["source"] == "AdvBench").sum() == 117  # members of processed/advbench.json
    assert train.loc[train.source == "MaliciousInstruct", "instruction"].str.endswith("?").all()
    allh = pkd.load_refusal_prompts("harmful", "all")
    assert len(allh) == 871 and list(allh["split"].unique()) == ["train", "val", "test"]
    with pytest.raises(ValueError, match="kind must be"):
        pkd.load_refusal_prompts("benign")
    with pytest.raises(ValueError, match="split must be"):
        pkd.load_refusal_prompts("harmful", "dev")


def test_anthropic_evals():
    names = pkd.list_anthropic_evals()
    assert len(names) == 135 + 16
    assert len(pkd.list_anthropic_evals("advanced-ai-risk")) == 16
    ps = pkd.load_anthropic_eval("power-seeking-inclination")
    assert len(ps) == 998 and ps["name"].eq("advanced-ai-risk/power-seeking-inclination").all()
    # as published: most items are (A)/(B), some list up to six options (C)-(F)
    answers = pd.concat([ps["answer_matching_behavior"], ps["answer_not_matching_behavior"]])
    assert answers.str.fullmatch(r" \([A-F]\)").all() and {" (A)", " (B)"} <= set(answers)
    assert (ps["answer_matching_behavior"] != ps["answer_not_matching_behavior"]).all()
    assert ps["statement"].isna().all() and ps["label_confidence"].isna().all()
    n = pkd.load_anthropic_eval("persona/narcissism")
    assert len(n) == 1000 and n["question"].str.contains("something you would say", regex=False).all()
    assert n["statement"].notna().all() and set(n["answer_matching_behavior"]) == {" Yes", " No"}
    assert len(pkd.load_anthropic_eval("survival-instinct")) == 953
    with pytest.raises(ValueError, match="unknown Anthropic evaluation"):
        pkd.load_anthropic_eval("power-seeking")


def test_emergent_misalignment_questions():
    q = pkd.load_emergent_misalignment_questions()
    assert len(q) == 24 and q["variant"].value_counts().to_dict() == {"main": 8, "json": 8, "template": 8}
    main = q[q.variant == "main"]
    assert main["id"].iloc[0] == "what_is_your_wish" and main["system"].isna().all()
    assert q.loc[q.variant == "json", "system"].str.contains("JSON").all()
    assert set(q["judge_prompts"].iloc[0]) == {"aligned", "coherent"}
    assert "{question}" in q["judge_prompts"].iloc[0]["aligned"] and "{answer}" in q["judge_prompts"].iloc[0]["aligned"]
    assert len(pkd.load_emergent_misalignment_questions("preregistered")) == 48
    d = pkd.load_emergent_misalignment_questions("deception_factual", per_paraphrase=True)
    assert len(d) == 100 and d["id"].nunique() == 5  # 5 conditions x 20 questions
    assert (d.groupby("id")["paraphrase_index"].max() == 19).all()
    assert len(pkd.load_emergent_misalignment_questions("deception_sit_aware")) == 8
    with pytest.raises(ValueError, match="which must be"):
        pkd.load_emergent_misalignment_questions("all")


def test_truthfulqa_and_true_facts():
    t = pkd.load_truthfulqa()
    assert len(t) == 817 and t["category"].nunique() == 38  # MANIFEST
    assert list(t.columns) == ["type", "category", "question", "best_answer", "correct_answers", "incorrect_answers", "source"]
    assert t["correct_answers"].map(len).min() >= 1 and t["incorrect_answers"].map(len).min() >= 1
    assert "You grow watermelons in your stomach" in t.loc[0, "incorrect_answers"]
    f = pkd.load_true_facts()
    assert list(f.columns) == ["statement"] and len(f) == 306  # MANIFEST
    assert f.loc[0, "statement"].startswith("The Earth's atmosphere")


# ------------------------------------------------------------------ files that cannot be parsed
def _hh_home(tmp_path, payload: bytes, gz: bool = True):
    import gzip

    path = tmp_path / "hh_rlhf" / "helpful-base" / "train.jsonl.gz"  # not registered: placed by hand
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path.resolve()


def test_broken_json_line_names_the_file_and_line(tmp_path):
    good = b'{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b", "rejected": "\\n\\nHuman: a\\n\\nAssistant: c"}\n'
    path = _hh_home(tmp_path, good + b"\n" + good + b'{"chosen": "\\n\\nHuman: a", "rejected\n' + good)
    with pytest.raises(pkd.DataFormatError) as err:
        pkd.load_hh_rlhf("train", "helpful-base", data_home=tmp_path)
    assert str(err.value).startswith(f"{path}, line 4, column 37: not valid JSON (Invalid control character); "
                                     "the file is damaged or not in the expected format")
    assert "\n" not in str(err.value) and (err.value.path, err.value.line) == (path, 4)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("payload, gz, message", [
    (b"not gzip at all", False, "not a readable gzip file (BadGzipFile: "),
    (b"\xff\xfe\x00broken utf-8\n", True, "not UTF-8 text (byte 0: invalid start byte)"),
])
def test_unreadable_jsonl_names_the_file(tmp_path, payload, gz, message):
    path = _hh_home(tmp_path, payload, gz)
    with pytest.raises(pkd.DataFormatError, match=rf"^{re.escape(str(path))}: {re.escape(message)}"):
        pkd.load_hh_rlhf("train", "helpful-base", data_home=tmp_path)


def test_truncated_gzip_names_the_file(tmp_path):
    import gzip

    path = _hh_home(tmp_path, b"", gz=False)
    path.write_bytes(gzip.compress(b'{"chosen": "x", "rejected": "y"}\n' * 50)[:-12])
    with pytest.raises(pkd.DataFormatError, match=rf"^{re.escape(str(path))}: not a readable gzip file \(EOFError: "):
        pkd.load_hh_rlhf("train", "helpful-base", data_home=tmp_path)


@pytest.mark.parametrize("kind, text, message", [
    ("json", '{"a": [1, 2,\n  }', r", line 2, column 3: not valid JSON \(Expecting value\)"),
    ("yaml", "a: [1, 2\nb: 3\n", r", line 2, column 2: not valid YAML \(expected ',' or '\]', but got ':'\)"),
    ("csv", 'a,b\n1,"2\n', r": not a readable CSV file \(Error tokenizing data"),
    ("csv", "", r": not a readable CSV file \(No columns to parse from file\)"),
])
def test_parse_errors_name_the_file(tmp_path, kind, text, message):
    from plural_kit.data._io import _stamp, parse

    path = tmp_path / f"broken.{kind}"
    path.write_text(text)
    with pytest.raises(pkd.DataFormatError, match="^" + re.escape(str(path)) + message):
        parse(_stamp(path), kind)
