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


def chance_level(
    answer_types: list[str],
    n_choices: list[int],
    tasks: list[str] | None = None,
    answers: list[str] | None = None,
) -> float:
    """Expected accuracy of uniform guessing.

    Multiple choice: 1/k for k options. Multi-label: 1/(2^k - 1), a uniform guess among the
    non-empty sets of options (scored by exact set match). Numeric: 1/m where m is the number of
    distinct answers of that item's task in the evaluated set (guessing uniformly among the values
    that occur), or 0 when tasks/answers are not given.
    """
    distinct: dict[str, set[str]] = {}
    if tasks is not None and answers is not None:
        for t, task, a in zip(answer_types, tasks, answers, strict=True):
            if t == "numeric":
                distinct.setdefault(task, set()).add(a)
    per_item = []
    for i, (t, k) in enumerate(zip(answer_types, n_choices, strict=True)):
        if t == "mc":
            per_item.append(1.0 / k if k > 0 else 0.0)
        elif t == "multi":
            per_item.append(1.0 / (2**k - 1) if k > 0 else 0.0)
        elif tasks is not None and tasks[i] in distinct:
            per_item.append(1.0 / len(distinct[tasks[i]]))
        else:
            per_item.append(0.0)
    return float(np.mean(per_item)) if per_item else 0.0
