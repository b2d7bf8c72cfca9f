"""plural_kit.claims: three outcomes from an interval, stable printed lines, metrics.json records."""
import json

import numpy as np
import pytest

from plural_kit import claims as C
from plural_kit.stats import Interval


@pytest.mark.parametrize("side, interval, outcome", [
    ("greater", (0.3, 0.1, 0.5), C.HOLDS),
    ("greater", (-0.3, -0.5, -0.1), C.DOES_NOT_HOLD),
    ("greater", (0.1, -0.1, 0.3), C.NOT_DISTINGUISHABLE),
    ("less", (-0.3, -0.5, -0.1), C.HOLDS),
    ("less", (0.3, 0.1, 0.5), C.DOES_NOT_HOLD),
    ("greater", (0.3, float("nan"), float("nan")), C.NOT_DISTINGUISHABLE),
    ("greater", (0.0, 0.0, 0.0), C.NOT_DISTINGUISHABLE),  # on the threshold is not above it
])
def test_outcome_follows_the_interval(side, interval, outcome):
    c = C.Claim.from_interval("x", "x is positive", Interval(*interval), side=side)
    assert c.outcome == outcome and c.holds == (outcome == C.HOLDS)


def test_line_keeps_numbers_after_the_evidence_marker():
    c = C.Claim.from_interval("probe_selective", "the probe beats its control", Interval(0.61234, 0.4, 0.8),
                              quantity="selectivity", method="bootstrap over 48", details={"layer": 14})
    head, evidence = c.line().split(" | evidence: ")
    assert head == "claim probe_selective: HOLDS — the probe beats its control"
    assert evidence == "selectivity 0.61, 95% CI [0.40, 0.80] vs > 0 (bootstrap over 48; layer 14)"
    assert not any(ch.isdigit() for ch in head.replace("probe_selective", ""))


def test_claims_collection_round_trips_to_json_and_rejects_duplicates():
    cs = C.Claims([C.claim_mean("pos", "the mean is positive", np.arange(1.0, 20.0)),
                   C.claim_proportion("most", "most succeed", 3, 10)])
    assert cs.outcomes() == {"pos": C.HOLDS, "most": C.NOT_DISTINGUISHABLE}
    record = json.loads(json.dumps(cs.to_dict()))
    assert record["pos"]["outcome"] == "holds" and record["most"]["ci_high"] > 0.5
    assert list(cs.to_frame().index) == ["pos", "most"] and len(str(cs).splitlines()) == 2
    assert "<table>" in cs._repr_html_() and repr(cs) == "<Claims: 2 (1 holds, 1 not distinguishable)>"
    with pytest.raises(ValueError, match="already"):
        cs.add(C.claim_proportion("most", "again", 1, 2))
    with pytest.raises(KeyError, match="no claim 'nope'"):
        cs["nope"]
    with pytest.raises(ValueError, match="identifier"):
        C.Claim.from_interval("not a name", "s", Interval(0, 0, 0))


def test_extend_adds_all_or_nothing_and_returns_the_new_claims():
    cs = C.Claims([C.claim_proportion("a", "s", 3, 10)])
    added = cs.extend([C.claim_proportion("b", "s", 9, 10), C.claim_proportion("c", "s", 1, 10)])
    assert [c.name for c in added] == ["b", "c"] and list(cs.outcomes()) == ["a", "b", "c"]
    assert str(added).splitlines()[0].startswith("claim b: ")
    with pytest.raises(ValueError, match=r"\['a'\] are already"):
        cs.extend([C.claim_proportion("d", "s", 1, 2), C.claim_proportion("a", "s", 1, 2)])
    assert list(cs.outcomes()) == ["a", "b", "c"]                          # nothing of the failed call was added


def test_claims_for_makes_one_claim_per_model_in_order():
    calls = []

    def make(name, statement, model, baseline, k=0):
        calls.append((model, baseline, k))
        return C.claim_proportion(name, statement, 9 if model == "PAL" else 1, 10)

    out = C.claims_for(make, {"pal": "PAL", "mixture": ("MixtureBT", "MixtureBT [x, |x|^2]")},
                       "{key}_beats_bt", "{model} beats one BT reward", "BT", k=5)
    assert [c.name for c in out] == ["pal_beats_bt", "mixture_beats_bt"]
    assert [c.statement for c in out] == ["PAL beats one BT reward", "MixtureBT beats one BT reward"]
    assert calls == [("PAL", "BT", 5), ("MixtureBT [x, |x|^2]", "BT", 5)]  # the label names, the model is scored
    assert out.outcomes() == {"pal_beats_bt": C.HOLDS, "mixture_beats_bt": C.DOES_NOT_HOLD}
    with pytest.raises(ValueError, match="already"):
        C.claims_for(make, {"a": "PAL", "b": "BT"}, "same_name", "{model}", "BT")


def test_paired_and_difference_claims():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 3, 40)
    paired = C.claim_paired("lower", "ablating lowers the score", base - 1.0, base, side="less")
    assert paired.outcome == C.HOLDS and "paired bootstrap over 40" in paired.evidence()
    diff = C.claim_difference("same", "two samples differ", rng.normal(0, 1, 30), rng.normal(0, 1, 30))
    assert diff.outcome == C.NOT_DISTINGUISHABLE
