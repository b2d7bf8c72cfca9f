"""Run the mixture-modeling lesson with small parameters and check its metrics."""
import json
from pathlib import Path

import papermill as pm

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_mixture_modeling.ipynb"

SMALL = dict(
    n_items=120, n_features=4, n_groups=2, users_per_group=10, pairs_per_user=40,
    disagreements=[0.0, 1.0], pairs_grid=[10, 20], shots=[2, 10], seed=0, device="cpu",
)


def test_notebook_runs_and_writes_sane_metrics(tmp_path):
    pm.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters={**SMALL, "output_dir": str(tmp_path)},
        kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False,
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    gap = m["gap_vs_disagreement"]
    assert gap["disagreement"] == [0.0, 1.0]
    oracle, bt = gap["oracle"], gap["one BradleyTerry"]
    mix = gap["MixtureBT (K=2)"]
    assert all(0.5 < v <= 1 for v in oracle + bt + mix)
    # agreeing groups: one reward is enough; orthogonal groups: it falls clearly below the mixture
    assert bt[0] > oracle[0] - 0.05
    assert bt[1] < mix[1] - 0.05
    models = dict(zip(m["models"]["model"], m["models"]["accuracy"]))
    assert models["MixtureBT [x, |x|^2]"] > models["one BradleyTerry"]
    assert set(m["new_user_accuracy_vs_own_pairs"]["own pairs"]) == {0, 2, 10}
    assert all(0 <= v < 0.5 for v in m["calibration"]["ECE"])
