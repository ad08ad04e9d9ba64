"""Statistics of a seeds x budgets study: mean curves with bootstrap intervals over seeds,
completions-to-target, and paired differences between two methods run on the same seeds.

Every interval resamples *seeds* (the unit of replication), never the items of one evaluation:
seed-to-seed variation of an RL run is what decides whether one method beats another. Curves are
arrays `[seeds, budgets]` of held-out accuracy, one row per seed, one column per budget of
generated completions (the same budgets for every seed of a study).

- `mean_with_ci`: per column, the mean over seeds and the percentile-bootstrap interval.
- `completions_to_target`: the first budget at which the *mean* curve reaches the target, and its
  interval from recomputing that budget on resampled seeds. A mean curve that never reaches the
  target within the budgets gives None ("not reached"), and an interval end that is not reached is
  None as well.
- `paired_difference`: mean over seeds of a - b for two methods run with the same seeds (seed i of
  a paired with seed i of b), with a paired bootstrap interval (the same resampled seeds for both).
- `ratio_to_target`: how many times fewer completions method a needs than b to reach the target,
  b's completions-to-target over a's, with a paired bootstrap interval.

All resampling is seeded, so the same results give the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _curves(name: str, curves: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    values = np.asarray(curves, dtype=np.float64)  # [S, K]
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{name}: need a non-empty [seeds, budgets] array, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: accuracies must be finite")
    return values


def _resamples(n_seeds: int, n_boot: int, seed: int) -> np.ndarray:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # [n_boot, S]


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):  # interpolating between two infinite order statistics: inf - inf
        bounds = np.quantile(values, [tail, 1.0 - tail])  # [2]
    # a ratio resampled as +inf on both sides of a bound is +inf there, not "undefined"
    nearest = np.quantile(values, [tail, 1.0 - tail], method="nearest")  # [2]
    low, high = np.where(np.isnan(bounds), nearest, bounds)
    return float(low), float(high)


def mean_with_ci(
    curves: Sequence[Sequence[float]] | np.ndarray,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """{mean, ci_low, ci_high}: one value per budget (column), resampling seeds (rows)."""
    values = _curves("mean_with_ci", curves)  # [S, K]
    idx = _resamples(values.shape[0], n_boot, seed)  # [n_boot, S]
    boot = values[idx].mean(axis=1)  # [n_boot, K]
    bounds = [_interval(boot[:, k], confidence) for k in range(values.shape[1])]
    return {
        "mean": values.mean(axis=0).tolist(),
        "ci_low": [b[0] for b in bounds],
        "ci_high": [b[1] for b in bounds],
    }


def first_reaching(mean_curve: np.ndarray, budgets: np.ndarray, target: float) -> float | None:
    """The first budget whose value is >= target (a small tolerance absorbs float rounding)."""
    hits = np.flatnonzero(mean_curve >= target - 1e-9)
    return float(budgets[hits[0]]) if hits.size else None


def _budgets(budgets: Sequence[float], n: int) -> np.ndarray:
    b = np.asarray(budgets, dtype=np.float64)  # [K]
    if b.shape != (n,) or np.any(np.diff(b) <= 0):
        raise ValueError(f"budgets must be {n} increasing numbers, one per curve column, got {list(budgets)}")
    return b


def completions_to_target(
    curves: Sequence[Sequence[float]] | np.ndarray,
    budgets: Sequence[float],
    target: float,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float | None]:
    """{value, ci_low, ci_high, reached_share}: budget at which the mean curve first reaches target.

    `reached_share` is the share of bootstrap resamples whose mean curve reaches the target; the
    interval ends are None when more than the tail share of resamples never reach it.
    """
    values = _curves("completions_to_target", curves)  # [S, K]
    b = _budgets(budgets, values.shape[1])
    idx = _resamples(values.shape[0], n_boot, seed)  # [n_boot, S]
    boot_means = values[idx].mean(axis=1)  # [n_boot, K]
    hits = [first_reaching(m, b, target) for m in boot_means]
    as_number = np.array([np.inf if h is None else h for h in hits])  # [n_boot]
    low, high = _interval(as_number, confidence) if np.isfinite(as_number).any() else (np.inf, np.inf)
    return {
        "value": first_reaching(values.mean(axis=0), b, target),
        "ci_low": None if not np.isfinite(low) else low,
        "ci_high": None if not np.isfinite(high) else high,
        "reached_share": float(np.isfinite(as_number).mean()),
    }


def paired_difference(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """{mean, ci_low, ci_high}: mean of a_i - b_i over seeds i, paired bootstrap interval."""
    x = np.asarray(a, dtype=np.float64)  # [S]
    y = np.asarray(b, dtype=np.float64)  # [S]
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired_difference: need two equal-length 1-D samples, got {x.shape} and {y.shape}")
    diff = x - y  # [S]
    boot = diff[_resamples(diff.size, n_boot, seed)].mean(axis=1)  # [n_boot]
    low, high = _interval(boot, confidence)
    return {"mean": float(diff.mean()), "ci_low": low, "ci_high": high}


def ratio_to_target(
    a: Sequence[Sequence[float]] | np.ndarray,
    b: Sequence[Sequence[float]] | np.ndarray,
    budgets: Sequence[float],
    target: float,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float | None]:
    """{value, ci_low, ci_high}: b's completions-to-target / a's (> 1: a needs fewer), resampling
    the same seeds for both. A resample where a never reaches the target counts as ratio 0, one
    where only b never reaches it as +inf (as does a resample where a is already there at budget 0
    and b is not); the value is None when a's mean curve never reaches it."""
    x, y = _curves("ratio_to_target", a), _curves("ratio_to_target", b)
    if x.shape != y.shape:
        raise ValueError(f"ratio_to_target: curves of a {x.shape} and b {y.shape} must pair seed by seed")
    bud = _budgets(budgets, x.shape[1])

    def ratio(mx: np.ndarray, my: np.ndarray) -> float:
        ta, tb = first_reaching(mx, bud, target), first_reaching(my, bud, target)
        if ta is None:
            return 0.0
        if tb is None:
            return np.inf
        if ta == 0:  # reached before any completion: as fast as b only if b did too
            return 1.0 if tb == 0 else np.inf
        return tb / ta

    value_a = first_reaching(x.mean(axis=0), bud, target)
    idx = _resamples(x.shape[0], n_boot, seed)  # [n_boot, S]
    boot = np.array([ratio(x[i].mean(axis=0), y[i].mean(axis=0)) for i in idx])  # [n_boot]
    low, high = _interval(boot, confidence)
    return {
        "value": None if value_a is None else ratio(x.mean(axis=0), y.mean(axis=0)),
        "ci_low": None if not np.isfinite(low) else low,
        "ci_high": None if not np.isfinite(high) else high,
    }
