"""The result protocol (plural_kit.results), its checker, the shared figures (plural_kit.viz) and io."""
import json
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from plural_kit import viz  # noqa: E402
from plural_kit.io import atomic_write_text, jsonable  # noqa: E402
from plural_kit.results import Result, Summary, check_result, frame_summary  # noqa: E402


@dataclass(repr=False)
class _Good(Result):
    table: pd.DataFrame
    title = "good"

    def to_frame(self):
        return self.table.copy()

    def plot(self, ax=None):
        return viz.intervals(self.to_frame(), ax=ax)


def _table():
    return pd.DataFrame({"estimate": [0.7, 0.6], "ci_low": [0.6, 0.5], "ci_high": [0.8, 0.7]}, index=["a", "b"])


def test_good_result_passes_and_renders_html():
    r = _Good(_table())
    check_result(r)
    assert r.summary()._repr_html_().startswith("<div>")
    assert "good" in r.summary() and "0.7" in r.summary()
    assert json.loads(json.dumps(r.to_dict()))["table"][0]["estimate"] == 0.7
    assert repr(r) == "<_Good: rows=2, columns=3>"


def test_checker_catches_a_live_table():
    @dataclass(repr=False)
    class Live(Result):
        table: pd.DataFrame

        def to_frame(self):
            return self.table

    with pytest.raises(AssertionError, match="same object"):
        check_result(Live(_table()))


def test_checker_catches_low_high_names_and_long_repr():
    @dataclass(repr=False)
    class OldNames(Result):
        def to_frame(self):
            return _table().rename(columns={"ci_low": "low", "ci_high": "test_high"})

    with pytest.raises(AssertionError, match=r"\['low', 'test_high'\]"):
        check_result(OldNames())

    @dataclass
    class DataclassRepr(Result):  # forgot repr=False: the dataclass repr prints the whole table
        table: pd.DataFrame

        def to_frame(self):
            return self.table.copy()

    with pytest.raises(AssertionError, match="repr"):
        check_result(DataclassRepr(pd.DataFrame({"x": np.arange(50.0)})))


def test_checker_catches_non_json_to_dict():
    class NotJson(_Good):
        def to_dict(self):
            return {"x": np.float64(1.0), "bad": object()}

    with pytest.raises(TypeError):
        check_result(NotJson(_table()))


def test_summary_is_text_with_html():
    s = frame_summary("title", _table(), notes="a note")
    assert isinstance(s, str) and isinstance(s, Summary)
    assert s.splitlines()[0] == "title" and s.splitlines()[-1] == "a note"
    assert repr(s) == s.as_text()
    assert "<table" in s.as_html() and "a note" in s.as_html()
    assert Summary("x <b>").as_html() == "<pre>x &lt;b&gt;</pre>"


def test_intervals_and_curve_draw_what_they_are_given():
    ax = viz.intervals(_table(), references={"oracle": 0.9}, kind="point")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first row on top
    plt.close(ax.figure)
    frame = pd.DataFrame({"k": [0, 1, 5, 0, 1, 5], "acc": [0.5, 0.6, 0.7, 0.5, 0.55, 0.6],
                          "model": ["m"] * 3 + ["n"] * 3})
    ax = viz.curve(frame, x="k", y="acc", hue="model", logx=True, xticks=[0, 1, 5], references={"oracle": 0.8})
    assert ax.get_xscale() == "symlog" and len(ax.get_lines()) == 3
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"needs columns \['ci_low', 'ci_high'\]"):
        viz.intervals(_table().drop(columns=["ci_low", "ci_high"]))
    with pytest.raises(ValueError, match="kind must be"):
        viz.intervals(_table(), kind="pie")


def test_heatmap_annotates_every_cell():
    ax = viz.heatmap(pd.DataFrame([[0.1, 0.9], [0.5, 0.4]], index=["r1", "r2"], columns=["c1", "c2"]))
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.40", "0.50", "0.90"]
    plt.close(ax.figure)


def test_jsonable_and_atomic_write(tmp_path):
    value = {"a": np.float32(0.5), "b": np.arange(2), "c": float("nan"), 3: pd.Series([1.0], index=["x"])}
    assert jsonable(value) == {"a": 0.5, "b": [0, 1], "c": None, "3": {"x": 1.0}}
    path = atomic_write_text(tmp_path / "sub" / "f.json", "{}")
    assert path.read_text() == "{}" and not list(path.parent.glob(".*tmp"))
