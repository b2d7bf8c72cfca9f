"""Time the reward fitters against baselines in one process and print the ratios.

    python benchmarks/bench_fitters.py [--quick]

1. BradleyTerry on 20,000 pairs x 384 features vs statsmodels' Logit (the same unpenalised
   MLE: the max |delta w| is printed) and vs a plain PyTorch full-batch L-BFGS loop; best of
   3 runs each. Target: >= 20x faster than statsmodels.
2. MixtureBT on 100,000 pairs x 576 features, K = 4 (4 x 500 users x 50 pairs): wall time,
   adjusted Rand index and accuracy against the oracle. Target: < 30 s.
3. PAL on 7,200 training pairs of 16-d ideal-point features from 3 groups: wall time and
   held-out accuracy against the oracle. Target: within 2 points of the oracle in < 3 s.

Timings depend on the machine and its load; compare ratios measured in the same run. The
CPU-time column (all threads of this process) is less sensitive to other processes' load.
"""
from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import statsmodels.api as sm
import torch
from sklearn.metrics import adjusted_rand_score

from plural_kit.data.synthetic import make_ideal_point_preferences, split_pairs
from plural_kit.reward import BradleyTerry, MixtureBT


def timed(fn, repeat: int = 1):
    """Run ``fn`` ``repeat`` times; return (result, (best wall seconds, best CPU seconds of this process))."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return out, (min(walls), min(cpus))


def torch_lbfgs_bt(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """The plain PyTorch baseline: full-batch L-BFGS on the mean BT loss, float64, autograd."""
    D = torch.as_tensor(chosen - rejected, dtype=torch.float64)
    w = torch.zeros(D.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(D @ w)).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def bench_bt(n: int, d: int, rows: list) -> None:
    data = make_ideal_point_preferences(
        n_items=4000, n_features=d, n_groups=1, users_per_group=n // 50, pairs_per_user=50, reward="linear",
        temperature=0.5, seed=0,
    )
    X, Y = data.X_chosen, data.X_rejected
    BradleyTerry().fit(X[:500], Y[:500])  # warm-up (thread pools, kernels)
    model, t_bt = timed(lambda: BradleyTerry(alpha=0.0).fit(X, Y), repeat=3)
    D = X - Y
    flip = np.arange(len(D)) % 2 == 1  # orient half the pairs the other way: both classes, same MLE
    logit, t_sm = timed(lambda: sm.Logit((~flip).astype(float), np.where(flip[:, None], -D, D)).fit(disp=0), repeat=3)
    w_torch, t_torch = timed(lambda: torch_lbfgs_bt(X, Y), repeat=3)
    dw_sm = np.abs(model.coef_ - logit.params).max()
    dw_torch = np.abs(model.coef_ - w_torch).max()
    rows.append((f"BradleyTerry {len(D):,} x {d}", t_bt, f"{model.n_iter_} Newton its, max|w|={np.abs(model.coef_).max():.3f}"))
    rows.append(("  statsmodels Logit", t_sm, f"max|dw| vs BT = {dw_sm:.1e}  -> BT is {t_sm[0] / t_bt[0]:.1f}x faster "
                 f"(CPU time: {t_sm[1] / t_bt[1]:.1f}x; target >= 20x)"))
    rows.append(("  PyTorch L-BFGS loop", t_torch, f"max|dw| vs BT = {dw_torch:.1e}  -> BT is {t_torch[0] / t_bt[0]:.1f}x "
                 f"faster (CPU time: {t_torch[1] / t_bt[1]:.1f}x)"))


def bench_mixture(users_per_group: int, d: int, rows: list) -> None:
    data = make_ideal_point_preferences(
        n_items=5000, n_features=d, n_groups=4, users_per_group=users_per_group, pairs_per_user=50, reward="linear",
        temperature=0.25, seed=1,
    )
    model, t = timed(lambda: MixtureBT(n_components=4).fit(data.X_chosen, data.X_rejected, data.users))
    ari = adjusted_rand_score(data.user_groups.loc[model.users_], model.predict_groups())
    acc = model.score(data.X_chosen, data.X_rejected, data.users)
    rows.append((
        f"MixtureBT K=4 {len(data):,} x {d}", t,
        f"{model.n_iter_} EM its (best of {model.n_init}), ARI={ari:.3f}, train acc={acc:.3f} "
        f"vs oracle {data.oracle_accuracy(observed=True):.3f} (target < 30 s)",
    ))


def bench_pal(rows: list) -> None:
    if importlib.util.find_spec("plural_kit.reward.pal") is None:
        rows.append(("PAL", (float("nan"), float("nan")), "skipped: plural_kit.reward.pal is not there"))
        return
    from plural_kit.reward.pal import PAL

    data = make_ideal_point_preferences(
        n_items=500, n_features=16, n_groups=3, users_per_group=40, pairs_per_user=75, reward="ideal_point", seed=2
    )
    train, test = split_pairs(data, test_size=0.2, seed=0)  # 7,200 training pairs
    model, t = timed(lambda: PAL(n_prototypes=3).fit(train.X_chosen, train.X_rejected, train.users))
    acc = model.score(test.X_chosen, test.X_rejected, test.users)
    oracle = test.oracle_accuracy(observed=True)
    rows.append((
        f"PAL K=3 {len(train):,} x 16", t,
        f"held-out acc={acc:.3f} vs oracle {oracle:.3f} (gap {100 * (oracle - acc):.1f} points; target <= 2 in < 3 s)",
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not the targets)")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows: list = []
    if args.quick:
        bench_bt(4000, 64, rows)
        bench_mixture(50, 64, rows)
    else:
        bench_bt(20_000, 384, rows)
        bench_mixture(500, 576, rows)
    bench_pal(rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device for 'auto': "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"{'fitter':34s} {'wall s':>8s} {'CPU s':>8s}  notes")
    for name, (wall, cpu), note in rows:
        print(f"{name:34s} {wall:8.2f} {cpu:8.2f}  {note}")


if __name__ == "__main__":
    main()
