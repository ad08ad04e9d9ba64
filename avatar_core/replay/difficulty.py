"""Per-prompt difficulty Rbar(q) and the dynamic quantile tiers of the hierarchical replay buffer.

`DifficultyTracker` keeps, for each stable prompt id, a moving average of the prompt's rewards:
the mean of its last `window` rewards (default, paper: 20) or an exponential moving average. It
also counts consecutive groups whose rewards were all zero (the hint trigger's streak) and keeps
the last KL to the reference reported for the prompt. Keys are prompt ids, never rendered prompt
text (the authors' code keys by text, so a hinted prompt would start a fresh history).

EMA convention (the paper names the option without a formula): the first reward seen sets the
average, each later reward r in order gives Rbar <- decay * Rbar + (1 - decay) * r.

`tier_thresholds` gives the (q_hard, q_medium) quantiles of Rbar over the prompts seen, with the
linear interpolation of numpy's default quantile; `assign_tier` maps one Rbar to a tier name.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

TRACKER_MODES = ("window", "ema")
_STATE_VERSION = 1


def _finite_rewards(prompt_id: str, rewards: Sequence[float]) -> list[float]:
    values = [float(r) for r in rewards]
    if not values:
        raise ValueError(
            f"difficulty update for prompt {prompt_id!r}: rewards is empty; a group needs >= 1 reward"
        )
    bad = [r for r in values if not math.isfinite(r)]
    if bad:
        raise ValueError(f"difficulty update for prompt {prompt_id!r}: rewards must be finite, got {bad[0]}")
    return values


class DifficultyTracker:
    """Rbar, zero-reward streak and last KL per prompt id."""

    def __init__(self, mode: str = "window", window: int = 20, ema_decay: float = 0.9) -> None:
        if mode not in TRACKER_MODES:
            raise ValueError(f"unknown difficulty mode {mode!r}; valid names: {', '.join(TRACKER_MODES)}")
        if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
            raise ValueError(f"difficulty window must be a positive int, got {window!r}")
        if not (0.0 < float(ema_decay) < 1.0):
            raise ValueError(f"difficulty ema_decay must be in (0, 1), got {ema_decay!r}")
        self.mode = mode
        self.window = window
        self.ema_decay = float(ema_decay)
        self._recent: dict[str, deque[float]] = {}  # window mode: last `window` rewards
        self._ema: dict[str, float] = {}  # ema mode
        self._n_rewards: dict[str, int] = {}
        self._zero_streak: dict[str, int] = {}
        self._kl: dict[str, float] = {}

    def update(
        self,
        prompt_id: str,
        rewards: Sequence[float],
        kl: float | None = None,
        streak_rewards: Sequence[float] | None = None,
    ) -> None:
        """Fold one group of rewards of one prompt into its history. The zero streak counts groups
        whose `streak_rewards` (default: `rewards`) are all zero, e.g. the accuracy part alone."""
        if not isinstance(prompt_id, str) or not prompt_id:
            raise ValueError(f"difficulty update: prompt_id must be a non-empty string, got {prompt_id!r}")
        values = _finite_rewards(prompt_id, rewards)
        if kl is not None and not math.isfinite(float(kl)):
            raise ValueError(f"difficulty update for prompt {prompt_id!r}: kl must be finite, got {kl}")
        if self.mode == "window":
            recent = self._recent.setdefault(prompt_id, deque(maxlen=self.window))
            recent.extend(values)
        else:
            ema = self._ema.get(prompt_id, values[0])
            start = 1 if prompt_id not in self._ema else 0
            for r in values[start:]:
                ema = self.ema_decay * ema + (1.0 - self.ema_decay) * r
            self._ema[prompt_id] = ema
        self._n_rewards[prompt_id] = self._n_rewards.get(prompt_id, 0) + len(values)
        streak_values = values if streak_rewards is None else _finite_rewards(prompt_id, streak_rewards)
        all_zero = all(r == 0.0 for r in streak_values)
        self._zero_streak[prompt_id] = self._zero_streak.get(prompt_id, 0) + 1 if all_zero else 0
        if kl is not None:
            self._kl[prompt_id] = float(kl)

    def rbar(self, prompt_id: str) -> float | None:
        """Moving-average reward of the prompt; None if it was never updated."""
        if self.mode == "window":
            recent = self._recent.get(prompt_id)
            return None if recent is None else sum(recent) / len(recent)
        return self._ema.get(prompt_id)

    def zero_streak(self, prompt_id: str) -> int:
        """Consecutive most recent groups whose rewards were all 0 (0 if never seen)."""
        return self._zero_streak.get(prompt_id, 0)

    def kl(self, prompt_id: str) -> float | None:
        """Last KL to the reference reported for the prompt; None if none was reported."""
        return self._kl.get(prompt_id)

    def n_rewards(self, prompt_id: str) -> int:
        """Rewards folded in for the prompt over its whole history."""
        return self._n_rewards.get(prompt_id, 0)

    def values(self) -> dict[str, float]:
        """Rbar of every prompt seen, in first-seen order."""
        return {pid: self.rbar(pid) for pid in self._n_rewards}  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._n_rewards)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self._n_rewards

    # ----------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (floats round-trip exactly through json)."""
        prompts: dict[str, dict[str, Any]] = {}
        for pid in self._n_rewards:
            entry: dict[str, Any] = {
                "n_rewards": self._n_rewards[pid],
                "zero_streak": self._zero_streak.get(pid, 0),
                "kl": self._kl.get(pid),
            }
            if self.mode == "window":
                entry["recent"] = list(self._recent[pid])
            else:
                entry["ema"] = self._ema[pid]
            prompts[pid] = entry
        return {
            "version": _STATE_VERSION,
            "mode": self.mode,
            "window": self.window,
            "ema_decay": self.ema_decay,
            "prompts": prompts,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the history by `state`; the averaging settings must match the saved ones."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"difficulty tracker state: field version must be {_STATE_VERSION}, got {got!r}")
        for name in ("mode", "window", "ema_decay"):
            if state.get(name) != getattr(self, name):
                raise ValueError(
                    f"difficulty tracker state: field {name} was {state.get(name)!r} when saved but the "
                    f"tracker has {getattr(self, name)!r}; build the tracker with the saved settings"
                )
        prompts = state.get("prompts")
        if not isinstance(prompts, dict):
            raise ValueError(
                "difficulty tracker state: field prompts must be a mapping of prompt id -> history"
            )
        recent: dict[str, deque[float]] = {}
        ema: dict[str, float] = {}
        n_rewards: dict[str, int] = {}
        zero_streak: dict[str, int] = {}
        kls: dict[str, float] = {}
        for pid, entry in prompts.items():
            try:
                n_rewards[pid] = int(entry["n_rewards"])
                zero_streak[pid] = int(entry["zero_streak"])
                if entry.get("kl") is not None:
                    kls[pid] = float(entry["kl"])
                if self.mode == "window":
                    recent[pid] = deque(_finite_rewards(pid, entry["recent"]), maxlen=self.window)
                else:
                    ema[pid] = float(entry["ema"])
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"difficulty tracker state: prompt {pid!r} has a malformed entry: {err}"
                ) from err
        self._recent, self._ema, self._n_rewards = recent, ema, n_rewards
        self._zero_streak, self._kl = zero_streak, kls


# --------------------------------------------------------------------------------- tiers


def tier_thresholds(
    rbar_values: Sequence[float], quantiles: tuple[float, float] = (0.40, 0.75)
) -> tuple[float, float]:
    """(q_hard, q_medium): the given quantiles of Rbar over the prompts seen (linear interpolation)."""
    q_hard, q_medium = (float(q) for q in quantiles)
    if not (0.0 < q_hard < q_medium < 1.0):
        raise ValueError(
            f"tier quantiles must satisfy 0 < hard < medium < 1, got hard={q_hard}, medium={q_medium}"
        )
    values = np.asarray([float(v) for v in rbar_values], dtype=np.float64)  # [P]
    if values.size == 0:
        raise ValueError("tier_thresholds: rbar_values is empty; update the tracker before assigning tiers")
    if not np.isfinite(values).all():
        raise ValueError(
            f"tier_thresholds: rbar_values must be finite, got {values[~np.isfinite(values)][0]}"
        )
    low, high = np.quantile(values, [q_hard, q_medium])  # linear interpolation between order statistics
    return float(low), float(high)


def assign_tier(rbar: float, thresholds: tuple[float, float]) -> str:
    """Tier name: "hard" if rbar <= q_hard, "medium" if rbar <= q_medium, else "easy"."""
    q_hard, q_medium = thresholds
    if not (math.isfinite(rbar) and math.isfinite(q_hard) and math.isfinite(q_medium)):
        raise ValueError(
            f"assign_tier: rbar and thresholds must be finite, got rbar={rbar}, thresholds={thresholds}"
        )
    if q_hard > q_medium:
        raise ValueError(f"assign_tier: thresholds must be ordered (q_hard <= q_medium), got {thresholds}")
    if rbar <= q_hard:
        return "hard"
    if rbar <= q_medium:
        return "medium"
    return "easy"
