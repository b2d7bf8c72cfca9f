import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from plural_kit.data.schema import PreferenceSchemaError
from plural_kit.results import Summary, check_result
from plural_kit.reward import BradleyTerry, bradley_terry_inference

STRENGTHS = {"a": 0.0, "b": 0.8, "c": -0.5, "d": 1.5, "e": 0.3}


def simulate(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    names = np.array(list(STRENGTHS))
    s = np.array(list(STRENGTHS.values()))
    i = rng.integers(0, 5, n)
    j = (i + rng.integers(1, 5, n)) % 5
    i_wins = rng.random(n) < 1 / (1 + np.exp(-(s[i] - s[j])))
    return pd.DataFrame(
        {"user": 0, "chosen": np.where(i_wins, names[i], names[j]), "rejected": np.where(i_wins, names[j], names[i])}
    )


def test_recovers_strengths_with_honest_intervals():
    res = bradley_terry_inference(simulate())
    assert res.reference == "a" and res.strengths["a"] == 0 and res.std_errors["a"] == 0
    truth = pd.Series(STRENGTHS)
    z = (res.strengths - truth).drop("a") / res.std_errors.drop("a")
    assert (z.abs() < 3.5).all()
    ci = res.conf_int()
    assert ((ci["ci_low"] <= truth) & (truth <= ci["ci_high"])).sum() >= 4
    frame = res.to_frame()
    assert list(frame.columns) == ["strength", "std_error", "ci_low", "ci_high", "p_value"]
    assert frame.index[0] == "d"  # the strongest first
    assert res.win_probability("d", "c") == pytest.approx(1 / (1 + np.exp(res.strengths["c"] - res.strengths["d"])))
    summary = res.summary()
    assert isinstance(summary, Summary) and "Bradley-Terry" in summary and "d" in summary
    assert summary.as_html().startswith("<table") and "first item wins" in summary.as_html()


def test_follows_the_result_protocol():
    res = bradley_terry_inference(simulate(n=600, seed=2), confidence=0.9)
    check_result(res)
    assert repr(res) == "<BTInferenceResult: items=5, n_pairs=600, reference=a, confidence=0.9>"
    d = res.to_dict()
    assert d["reference"] == "a" and d["confidence"] == 0.9 and len(d["table"]) == 5
    assert {"ci_low", "ci_high"} <= set(d["table"][0])
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == list(res.to_frame().index)
    plt.close(ax.figure)


def test_same_strengths_as_the_feature_model_and_sequence_input():
    df = simulate(n=1500, seed=1)
    res = bradley_terry_inference(df["chosen"].tolist(), df["rejected"].tolist(), reference="c")
    assert res.strengths["c"] == 0
    onehot = pd.get_dummies(pd.Categorical(df["chosen"], categories=list(STRENGTHS))).to_numpy(float)
    onehot_r = pd.get_dummies(pd.Categorical(df["rejected"], categories=list(STRENGTHS))).to_numpy(float)
    bt = BradleyTerry(alpha=0.0, tol=1e-10).fit(onehot, onehot_r)
    # BT on one-hot items is the same model; only differences are identified
    ours = pd.Series(bt.coef_, index=list(STRENGTHS))
    np.testing.assert_allclose((ours - ours["c"])[res.strengths.index], res.strengths, atol=1e-5)


def test_non_identifiable_inputs_are_named():
    with pytest.raises(ValueError, match=r"\['x'\] never lost"):
        bradley_terry_inference(["x", "x", "y"], ["y", "z", "z"])
    with pytest.raises(ValueError, match="strongly connected"):
        # two pairs of items never compared across
        bradley_terry_inference(["a", "b", "c", "d"], ["b", "a", "d", "c"])
    with pytest.raises(PreferenceSchemaError, match="missing"):
        bradley_terry_inference(pd.DataFrame({"chosen": [1], "rejected": [2]}))
    with pytest.raises(ValueError, match="reference item"):
        bradley_terry_inference(simulate(200), reference="zz")
    with pytest.raises(ValueError, match="'rejected' is required"):
        bradley_terry_inference(["a", "b"])
