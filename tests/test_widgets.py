import ipywidgets as widgets

from plural_kit.reward.experiments import MixtureGap
from plural_kit.widgets import mixture_explorer

SMALL = {"users_per_group": 8, "pairs_per_user": 30, "n_features": 4}


def test_static_result_when_headless():
    res = mixture_explorer(interactive=False, n_groups=2, **SMALL)
    assert isinstance(res, MixtureGap) and res.values == (1.0,)
    frame = res.to_frame()
    assert list(frame.columns) == ["oracle", "one BradleyTerry", "MixtureBT (K=2)", "MixtureBT ARI"]
    assert frame.iloc[0, :3].between(0.5, 1.0).all()
    # orthogonal groups: the mixture beats one reward and finds the groups
    assert frame.loc[1.0, "MixtureBT (K=2)"] > frame.loc[1.0, "one BradleyTerry"]
    assert frame.loc[1.0, "MixtureBT ARI"] > 0.5
    # identical groups: one reward is enough
    same = mixture_explorer(n_groups=2, disagreement=0.0, **SMALL).to_frame()
    assert same.loc[0.0, "one BradleyTerry"] > same.loc[0.0, "oracle"] - 0.05


def test_interactive_widget_has_the_controls():
    w = mixture_explorer(interactive=True, **SMALL)
    assert isinstance(w, widgets.interactive)
    labels = {c.description for c in w.children
              if isinstance(c, (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider))}
    assert labels == {"groups", "noise (T)", "disagreement"}
