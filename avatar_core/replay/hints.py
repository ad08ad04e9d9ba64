"""When to inject a prompt's pre-computed hint, and counters of how often it happened.

The paper hints a prompt that keeps failing: after a streak of >= 3 zero-reward groups, or when
Rbar(q) <= tau_R while the KL to the reference is <= tau_KL (the policy stopped exploring). The
authors' released code turns on only the streak trigger; `use_kl_trigger=False` reproduces that.

Departures and choices: the KL of the second trigger is the last KL the tracker holds for that
prompt (`DifficultyTracker.update(..., kl=...)`), so a prompt never given a KL (e.g. beta = 0,
no reference model) never fires it. The streak trigger is checked first and names the reason
when both hold. A prompt without a hint is never hinted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from avatar_core.replay.difficulty import DifficultyTracker

HINT_REASONS = ("zero_streak", "low_reward_low_kl")


class HintTrigger:
    """Decides, per prompt and step, whether to render the prompt with its hint."""

    def __init__(
        self, zero_streak: int = 3, use_kl_trigger: bool = True, tau_reward: float = 0.2, tau_kl: float = 0.01
    ) -> None:
        if isinstance(zero_streak, bool) or not isinstance(zero_streak, int) or zero_streak <= 0:
            raise ValueError(f"hint trigger zero_streak must be a positive int, got {zero_streak!r}")
        for name, value in (("tau_reward", tau_reward), ("tau_kl", tau_kl)):
            if not math.isfinite(value):
                raise ValueError(f"hint trigger {name} must be finite, got {value!r}")
        self.zero_streak = zero_streak
        self.use_kl_trigger = bool(use_kl_trigger)
        self.tau_reward = float(tau_reward)
        self.tau_kl = float(tau_kl)

    def decide(self, prompt_id: str, tracker: DifficultyTracker, has_hint: bool) -> tuple[bool, str]:
        """(hint?, reason): reason is one of HINT_REASONS when hinting, else ""."""
        if not has_hint:
            return False, ""
        if tracker.zero_streak(prompt_id) >= self.zero_streak:
            return True, "zero_streak"
        if self.use_kl_trigger:
            rbar, kl = tracker.rbar(prompt_id), tracker.kl(prompt_id)
            if rbar is not None and kl is not None and rbar <= self.tau_reward and kl <= self.tau_kl:
                return True, "low_reward_low_kl"
        return False, ""


@dataclass
class HintStats:
    """Counts of hint decisions for metrics: prompts checked, hinted (by reason), hinted generations."""

    prompts_checked: int = 0
    prompts_hinted: int = 0
    hinted_generations: int = 0
    total_generations: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: {r: 0 for r in HINT_REASONS})

    def record(self, hinted: bool, reason: str, n_generations: int) -> None:
        """One decision for one prompt whose group has `n_generations` completions."""
        if hinted and reason not in HINT_REASONS:
            raise ValueError(f"unknown hint reason {reason!r}; valid names: {', '.join(HINT_REASONS)}")
        if n_generations < 0:
            raise ValueError(f"HintStats.record: n_generations must be >= 0, got {n_generations}")
        self.prompts_checked += 1
        self.total_generations += n_generations
        if hinted:
            self.prompts_hinted += 1
            self.hinted_generations += n_generations
            self.by_reason[reason] += 1

    def as_dict(self) -> dict[str, float]:
        """Flat metrics; rates are 0 before anything is recorded. Every key is always present."""
        out: dict[str, float] = {
            "hint_prompts_checked": self.prompts_checked,
            "hint_prompts_hinted": self.prompts_hinted,
            "hint_generations": self.hinted_generations,
            "hint_prompt_rate": self.prompts_hinted / self.prompts_checked if self.prompts_checked else 0.0,
            "hint_generation_rate": (
                self.hinted_generations / self.total_generations if self.total_generations else 0.0
            ),
        }
        for reason in HINT_REASONS:
            out[f"hint_reason_{reason}"] = self.by_reason.get(reason, 0)
        return out

    def reset(self) -> None:
        """Zero every counter (e.g. at the start of each logging interval)."""
        self.prompts_checked = self.prompts_hinted = 0
        self.hinted_generations = self.total_generations = 0
        self.by_reason = {r: 0 for r in HINT_REASONS}


def hint_outcomes(history: dict[str, list[list[float]]]) -> dict[str, float | int | None]:
    """What hinting did for the prompts it touched, from each prompt's visits in order.

    `history` maps a prompt id to its visits `[step, hinted (0 or 1), group accuracy]`. For the
    prompts hinted at least once, the mean group accuracy before their first hint, in the hinted
    groups, and in the groups after their first hint that went without a hint (None where there is
    no such group), plus how many prompts and what share of all visits were hinted.
    """
    before: list[float] = []
    with_hint: list[float] = []
    after: list[float] = []
    hinted_prompts = visits = hinted_visits = 0
    for prompt_id, rows in history.items():
        for row in rows:
            if len(row) != 3 or not all(math.isfinite(float(v)) for v in row):
                raise ValueError(
                    f"hint history of prompt {prompt_id!r}: visits are [step, hinted, accuracy], got {row!r}"
                )
        visits += len(rows)
        first = next((k for k, (_, hinted, _) in enumerate(rows) if hinted), None)
        if first is None:
            continue
        hinted_prompts += 1
        before += [acc for _, _, acc in rows[:first]]
        for _, hinted, acc in rows[first:]:
            (with_hint if hinted else after).append(acc)
            hinted_visits += bool(hinted)

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "hinted_prompts": hinted_prompts,
        "hint_visit_rate": hinted_visits / visits if visits else 0.0,
        "hinted_acc_before": mean(before),
        "hinted_acc_with_hint": mean(with_hint),
        "hinted_acc_after": mean(after),
        "hinted_groups": len(with_hint),
        "hinted_groups_after": len(after),
    }
