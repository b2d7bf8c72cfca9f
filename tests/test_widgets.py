import ipywidgets as widgets
import pandas as pd

from plural_kit.widgets import mixture_explorer, mixture_gap


def test_static_result_when_headless():
    res = mixture_explorer(interactive=False, n_groups=2, users_per_group=8, pairs_per_user=30, n_features=4)
    assert isinstance(res, pd.DataFrame)
    assert list(res.index) == ["oracle", "one BradleyTerry", "MixtureBT (K=2)"]
    assert res["accuracy"].between(0.5, 1.0).all()
    # orthogonal groups: the mixture beats one reward; identical groups: one reward is enough
    assert res.loc["MixtureBT (K=2)", "accuracy"] > res.loc["one BradleyTerry", "accuracy"]
    same = mixture_gap(n_groups=2, disagreement=0.0, users_per_group=8, pairs_per_user=30, n_features=4)
    assert same.loc["one BradleyTerry", "accuracy"] > same.loc["oracle", "accuracy"] - 0.05


def test_interactive_widget_has_the_controls():
    w = mixture_explorer(interactive=True, users_per_group=8, pairs_per_user=30, n_features=4)
    assert isinstance(w, widgets.interactive)
    labels = {c.description for c in w.children if isinstance(c, (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider))}
    assert labels == {"groups", "noise (T)", "disagreement"}
