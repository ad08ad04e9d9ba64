"""Accuracy with percentile-bootstrap confidence intervals.

The interval resamples the per-item correctness vector with replacement `n_boot` times and takes
the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of the resampled means. Seeded, so
the same results give the same interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Accuracy:
    accuracy: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def bootstrap_accuracy(
    correct: list[float] | np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Accuracy:
    """Mean of `correct` (0/1 or partial credit in [0, 1]) with its bootstrap interval."""
    values = np.asarray(correct, dtype=np.float64)  # [n]
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"need a non-empty 1-D vector of per-item scores, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("per-item scores must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))  # [n_boot, n]
    means = values[idx].mean(axis=1)  # [n_boot]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Accuracy(float(values.mean()), float(low), float(high), int(values.size))


def chance_level(answer_types: list[str], n_choices: list[int]) -> float:
    """Expected accuracy of uniform guessing: 1/k per multiple-choice item, 0 for numeric items."""
    per_item = [1.0 / k if t == "mc" and k > 0 else 0.0 for t, k in zip(answer_types, n_choices, strict=True)]
    return float(np.mean(per_item)) if per_item else 0.0
