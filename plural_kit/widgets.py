"""Small ipywidgets explorers for the lessons.

Each explorer is a thin widget over a package experiment (usable headless, e.g. under
papermill, where it returns the experiment's result) that reruns it when a slider moves.
"""
from __future__ import annotations

from plural_kit.reward.experiments import MixtureGap, mixture_gap

__all__ = ["mixture_explorer", "mixture_gap"]


def mixture_explorer(interactive: bool = False, **defaults):
    """Sliders for the number of groups, the label noise and the disagreement over
    :func:`plural_kit.reward.experiments.mixture_gap` at one disagreement.

    ``defaults``: ``n_groups``, ``temperature``, ``disagreement`` (the sliders' start) and any
    other argument of ``mixture_gap`` (``n_features``, ``users_per_group``, ``seed``, ``device``...).
    ``interactive=False`` (headless, e.g. papermill): return that :class:`MixtureGap` result.
    ``interactive=True``: an ``ipywidgets`` widget that reruns it and shows its summary on every
    change (needs a live Jupyter frontend).
    """
    start = {"n_groups": defaults.pop("n_groups", 3), "temperature": defaults.pop("temperature", 0.25),
             "disagreement": defaults.pop("disagreement", 1.0)}

    def run(n_groups: int, temperature: float, disagreement: float) -> MixtureGap:
        return mixture_gap([disagreement], n_groups=n_groups, temperature=temperature, **defaults)

    if not interactive:
        return run(**start)
    import ipywidgets as widgets

    controls = {
        "n_groups": widgets.IntSlider(value=start["n_groups"], min=1, max=6, description="groups"),
        "temperature": widgets.FloatLogSlider(value=start["temperature"], base=10, min=-1.5, max=0.5,
                                              description="noise (T)"),
        "disagreement": widgets.FloatSlider(value=start["disagreement"], min=0.0, max=1.0, step=0.1,
                                            description="disagreement"),
    }
    return widgets.interactive(lambda **kw: run(**kw).summary(), {"manual": True}, **controls)
