"""Integer splits and within-tier draws used by the hierarchical replay buffer.

- `split_counts`: largest-remainder rounding of `total * ratio` (floors first, then one extra unit
  to the largest fractional parts, ties broken by tier order easy, medium, hard), so the parts sum
  to `total` exactly. Used for the fixed tier capacities and for the per-draw tier counts.
- `sample_counts`: per-tier counts of one draw; a tier holding fewer entries than its share gives
  everything it has and its shortfall is split over the remaining tiers in their ratios.
- `priority_draw`: k indices without replacement with probability proportional to
  exp((score - min score) / T), as the paper states. It is implemented as Gumbel-top-k on the log
  weights, which is the same distribution as drawing one at a time and renormalising, and never
  overflows (a score spread of 1000 / T would overflow exp in float64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

TIERS = ("easy", "medium", "hard")


def check_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    """Validated tier ratios: exactly the three tier names, each in (0, 1), summing to 1."""
    unknown = sorted(set(ratios) - set(TIERS))
    if unknown:
        raise ValueError(
            f"unknown tier name(s) {', '.join(map(repr, unknown))} in ratios; valid names: {', '.join(TIERS)}"
        )
    missing = [t for t in TIERS if t not in ratios]
    if missing:
        raise ValueError(
            f"ratios is missing tier(s) {', '.join(missing)}; give a share for each of {', '.join(TIERS)}"
        )
    out = {t: float(ratios[t]) for t in TIERS}
    for tier, share in out.items():
        if not (math.isfinite(share) and 0.0 < share < 1.0):
            raise ValueError(f"ratio of tier {tier!r} must be in (0, 1), got {share}")
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"tier ratios must sum to 1, got easy+medium+hard = {total:.6g}")
    return out


def split_counts(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder split of `total` over tier `weights` (renormalised); parts sum to `total`."""
    if total < 0:
        raise ValueError(f"split_counts: total must be >= 0, got {total}")
    names = [t for t in TIERS if t in weights]
    weight_sum = sum(weights[t] for t in names)
    exact = {t: total * weights[t] / weight_sum for t in names}
    # the 1e-9 absorbs float noise such as 10 * 0.3 = 2.9999999999999996, which should floor to 3
    counts = {t: min(total, math.floor(exact[t] + 1e-9)) for t in names}
    left = total - sum(counts.values())
    by_fraction = sorted(names, key=lambda t: (-(exact[t] - counts[t]), names.index(t)))
    for t in by_fraction[: max(left, 0)]:
        counts[t] += 1
    return counts


def sample_counts(n: int, ratios: Mapping[str, float], sizes: Mapping[str, int]) -> dict[str, int]:
    """How many entries to draw from each tier for a draw of min(n, total size) entries."""
    counts = {t: 0 for t in TIERS}
    remaining = min(n, sum(sizes[t] for t in TIERS))
    active = [t for t in TIERS if sizes[t] > 0]
    while remaining > 0:
        share = split_counts(remaining, {t: ratios[t] for t in active})
        short = [t for t in active if share[t] > sizes[t]]
        if not short:
            for t in active:
                counts[t] = share[t]
            break
        for t in short:  # give all it has; the rest is re-split over the other tiers next round
            counts[t] = sizes[t]
            remaining -= sizes[t]
            active.remove(t)
    return counts


def priority_draw(
    scores: Sequence[float], k: int, temperature: float, generator: torch.Generator
) -> list[int]:
    """k distinct indices, drawn in order with probability proportional to exp((s - min s) / T)."""
    if k <= 0:
        return []
    score = torch.tensor(scores, dtype=torch.float64)  # [N]
    log_weight = (score - score.min()) / temperature  # [N]
    exponential = torch.empty_like(score).exponential_(generator=generator)  # [N] Exp(1)
    keys = log_weight - torch.log(exponential)  # [N] log w + Gumbel noise
    return torch.topk(keys, k).indices.tolist()
