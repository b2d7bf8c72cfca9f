"""Small ipywidgets explorers for the lessons.

Each explorer is a plain function that computes a result (usable headless, e.g. under
papermill) plus a thin widget wrapper that recomputes it when a slider moves.
"""
from __future__ import annotations

import pandas as pd
from sklearn.metrics import adjusted_rand_score

from plural_kit.data.synthetic import make_ideal_point_preferences, split_pairs
from plural_kit.reward import BradleyTerry, MixtureBT


def mixture_gap(
    n_groups: int = 3,
    temperature: float = 0.25,
    disagreement: float = 1.0,
    n_features: int = 8,
    users_per_group: int = 20,
    pairs_per_user: int = 40,
    seed: int = 0,
    device: str = "cpu",
) -> pd.DataFrame:
    """Held-out accuracy of the oracle, one Bradley-Terry and a K-component MixtureBT.

    Linear-reward synthetic data (:func:`make_ideal_point_preferences`); 25% of each user's
    pairs are held out. Returns a DataFrame indexed by model with ``accuracy`` and ``ari``
    (adjusted Rand index of the recovered groups; NaN for models without groups).
    """
    data = make_ideal_point_preferences(
        n_items=200, n_features=n_features, n_groups=n_groups, users_per_group=users_per_group,
        pairs_per_user=pairs_per_user, reward="linear", disagreement=disagreement, temperature=temperature, seed=seed,
    )
    train, test = split_pairs(data, test_size=0.25, seed=seed)
    bt = BradleyTerry(device=device).fit(train.X_chosen, train.X_rejected)
    mix = MixtureBT(n_components=n_groups, device=device, random_state=seed)
    mix.fit(train.X_chosen, train.X_rejected, train.users)
    ari = adjusted_rand_score(data.user_groups.loc[mix.users_], mix.predict_groups())
    return pd.DataFrame(
        {
            "accuracy": [
                test.oracle_accuracy(observed=True),
                bt.score(test.X_chosen, test.X_rejected),
                mix.score(test.X_chosen, test.X_rejected, test.users),
            ],
            "ari": [float("nan"), float("nan"), ari],
        },
        index=pd.Index(["oracle", "one BradleyTerry", f"MixtureBT (K={n_groups})"], name="model"),
    )


def mixture_explorer(interactive: bool = False, **defaults):
    """Sliders for the number of groups, the label noise and the disagreement over :func:`mixture_gap`.

    ``interactive=False`` (headless, e.g. papermill): return ``mixture_gap(**defaults)`` as a
    static result. ``interactive=True``: return an ``ipywidgets`` widget that recomputes and
    shows the table on every change (needs a live Jupyter frontend).
    """
    if not interactive:
        return mixture_gap(**defaults)
    import ipywidgets as widgets

    controls = {
        "n_groups": widgets.IntSlider(value=defaults.pop("n_groups", 3), min=1, max=6, description="groups"),
        "temperature": widgets.FloatLogSlider(
            value=defaults.pop("temperature", 0.25), base=10, min=-1.5, max=0.5, description="noise (T)"
        ),
        "disagreement": widgets.FloatSlider(
            value=defaults.pop("disagreement", 1.0), min=0.0, max=1.0, step=0.1, description="disagreement"
        ),
    }
    return widgets.interactive(lambda **kw: mixture_gap(**kw, **defaults).round(3), {"manual": True}, **controls)
