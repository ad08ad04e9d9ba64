"""The hierarchical replay buffer: three fixed-capacity difficulty tiers with FIFO eviction.

As in the paper: trajectories go to the Easy / Medium / Hard tier by the Rbar quantiles of the
prompts seen (`difficulty.tier_thresholds`), tiers hold fixed shares of the capacity (default
25 / 35 / 40 %), eviction is FIFO inside the receiving tier only (easy samples are never flushed
by hard ones), and a draw takes per-tier counts in the tier ratios; inside a tier either by
priority exp((score - min score) / T) with score = advantage - kl_penalty * KL, without
replacement, or FIFO.

Choices the paper leaves open, made here:
- Tier capacities and per-draw counts use largest-remainder rounding (they sum exactly); a tier
  holding fewer entries than its share gives all it has and the others split the shortfall. A
  draw larger than the buffer returns every entry.
- FIFO sampling serves a tier in insertion order, oldest first, and continues after the last
  entry it served on the next draw (wrapping to the oldest), so every entry is replayed in turn
  rather than the same oldest ones each time. The cursors are part of the saved state.
- A tier whose capacity rounds to 0 (tiny capacities) stores nothing; `add` still names it.
- `augment_group` is the advantage-collapse fix: a fresh group with zero reward variance is
  joined by stored trajectories of the same prompt with a different reward, most recent first.

Stored trajectories are CPU copies with their own storage; `sample`, `same_prompt` and
`augment_group` return shallow copies, so changing their scalar fields leaves the buffer intact.
The state is safetensors + JSON (see `buffer_io`), including the sampling RNG state, so a resumed
run draws exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from avatar_core.replay import buffer_io
from avatar_core.replay.allocation import TIERS, check_ratios, priority_draw, sample_counts, split_counts
from avatar_core.replay.difficulty import assign_tier
from avatar_core.replay.trajectory import Trajectory

SAMPLING_RULES = ("priority", "fifo")
DEFAULT_RATIOS = {"easy": 0.25, "medium": 0.35, "hard": 0.40}
# rewards closer than this count as equal (a "zero-variance" group; a replay that "differs")
REWARD_TOL = 1e-8


class HierarchicalReplayBuffer:
    TIERS = TIERS

    def __init__(
        self,
        capacity: int = 10_000,
        ratios: dict[str, float] | None = None,
        sampling: str = "priority",
        temperature: float = 1.0,
        kl_penalty: float = 0.1,
        seed: int = 0,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"replay buffer capacity must be a positive int, got {capacity!r}")
        if sampling not in SAMPLING_RULES:
            raise ValueError(
                f"unknown replay sampling {sampling!r}; valid names: {', '.join(SAMPLING_RULES)}"
            )
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"replay priority temperature must be > 0, got {temperature!r}")
        if not (math.isfinite(kl_penalty) and kl_penalty >= 0):
            raise ValueError(f"replay kl_penalty must be >= 0, got {kl_penalty!r}")
        self.capacity = capacity
        self.ratios = check_ratios(DEFAULT_RATIOS if ratios is None else ratios)
        self.sampling = sampling
        self.temperature = float(temperature)
        self.kl_penalty = float(kl_penalty)
        self.seed = int(seed)
        self._capacities = split_counts(capacity, self.ratios)
        self._tiers: dict[str, deque[Trajectory]] = {t: deque() for t in TIERS}
        self._by_prompt: dict[str, dict[int, Trajectory]] = {}  # prompt id -> insert index -> entry
        self._insert_counter = 0
        self._fifo_cursor = {t: -1 for t in TIERS}  # insert index of the last entry served per tier
        self._generator = torch.Generator().manual_seed(self.seed)

    # ----------------------------------------------------------------------------- contents

    def add(self, traj: Trajectory, thresholds: tuple[float, float]) -> str:
        """Store `traj` in the tier its Rbar falls in; evict that tier's oldest entry when full."""
        traj.validate()
        tier = assign_tier(traj.rbar, thresholds)
        stored = traj.stored_copy(insert_index=self._insert_counter)
        self._insert_counter += 1
        if self._capacities[tier] == 0:
            return tier
        queue = self._tiers[tier]
        if len(queue) >= self._capacities[tier]:
            self._forget(queue.popleft())
        queue.append(stored)
        self._by_prompt.setdefault(stored.prompt_id, {})[stored.insert_index] = stored
        return tier

    def _forget(self, evicted: Trajectory) -> None:
        same = self._by_prompt[evicted.prompt_id]
        del same[evicted.insert_index]
        if not same:
            del self._by_prompt[evicted.prompt_id]

    def sample(self, n: int) -> list[Trajectory]:
        """Draw min(n, len(self)) distinct trajectories: tier counts in the tier ratios, then
        priority or FIFO inside each tier. Returned tier by tier (easy, medium, hard)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"replay sample size must be an int >= 0, got {n!r}")
        counts = sample_counts(n, self.ratios, self.tier_sizes())
        drawn: list[Trajectory] = []
        for tier in TIERS:
            queue = self._tiers[tier]
            if counts[tier] == 0:
                continue
            if self.sampling == "priority":
                scores = [t.advantage - self.kl_penalty * t.kl for t in queue]
                picks = priority_draw(scores, counts[tier], self.temperature, self._generator)
            else:
                picks = self._fifo_positions(tier, counts[tier])
            drawn.extend(dataclasses.replace(queue[i]) for i in picks)
        return drawn

    def _fifo_positions(self, tier: str, k: int) -> list[int]:
        queue = self._tiers[tier]
        indices = [t.insert_index for t in queue]  # ascending: a tier only appends and pops left
        start = bisect.bisect_right(indices, self._fifo_cursor[tier])
        positions = [(start + j) % len(queue) for j in range(k)]
        self._fifo_cursor[tier] = indices[positions[-1]]
        return positions

    def same_prompt(self, prompt_id: str) -> list[Trajectory]:
        """Every stored trajectory of `prompt_id`, oldest first."""
        same = self._by_prompt.get(prompt_id, {})
        return [dataclasses.replace(same[i]) for i in sorted(same)]

    def augment_group(
        self, prompt_id: str, fresh_rewards: Sequence[float], max_extra: int
    ) -> list[Trajectory]:
        """Replays that restore a reward spread to a collapsed fresh group of `prompt_id`.

        Returns [] when the fresh rewards already vary; otherwise up to `max_extra` stored
        trajectories of the prompt whose reward differs from the group's reward, most recent first.
        """
        rewards = [float(r) for r in fresh_rewards]
        if not rewards:
            raise ValueError(f"augment_group for prompt {prompt_id!r}: fresh_rewards is empty")
        if not all(math.isfinite(r) for r in rewards):
            raise ValueError(
                f"augment_group for prompt {prompt_id!r}: fresh_rewards must be finite, got {rewards}"
            )
        if isinstance(max_extra, bool) or not isinstance(max_extra, int) or max_extra < 0:
            raise ValueError(f"augment_group: max_extra must be an int >= 0, got {max_extra!r}")
        if max(rewards) - min(rewards) > REWARD_TOL or max_extra == 0:
            return []
        group_reward = rewards[0]
        same = self._by_prompt.get(prompt_id, {})
        extra = []
        for index in sorted(same, reverse=True):
            if abs(same[index].reward - group_reward) > REWARD_TOL:
                extra.append(dataclasses.replace(same[index]))
                if len(extra) == max_extra:
                    break
        return extra

    def tier_sizes(self) -> dict[str, int]:
        return {t: len(self._tiers[t]) for t in TIERS}

    def tier_capacities(self) -> dict[str, int]:
        return dict(self._capacities)

    def __len__(self) -> int:
        return sum(len(q) for q in self._tiers.values())

    def entries(self, tier: str) -> list[Trajectory]:
        """The stored trajectories of one tier, oldest first (shallow copies)."""
        if tier not in TIERS:
            raise KeyError(f"unknown tier {tier!r}; valid names: {', '.join(TIERS)}")
        return [dataclasses.replace(t) for t in self._tiers[tier]]

    # ----------------------------------------------------------------------------- state

    def _config(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "ratios": dict(self.ratios),
            "sampling": self.sampling,
            "temperature": self.temperature,
            "kl_penalty": self.kl_penalty,
            "seed": self.seed,
        }

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors for safetensors, JSON-able metadata): every entry, tier order, counters, RNG."""
        rows = [(tier, traj) for tier in TIERS for traj in self._tiers[tier]]
        cursors = dict(self._fifo_cursor)
        return buffer_io.pack(
            rows, self._generator.get_state(), self._config(), self._insert_counter, cursors
        )

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Replace the contents by a saved state. Capacity and ratios must match the saved ones
        (tier membership depends on them); sampling settings are this buffer's own."""
        saved = buffer_io.check_meta(meta)["config"]
        for name in ("capacity", "ratios"):
            if saved[name] != getattr(self, name):
                raise ValueError(
                    f"replay buffer state: field config.{name} was {saved[name]!r} when saved but this "
                    f"buffer has {getattr(self, name)!r}; build it with the saved value or use .load()"
                )
        rows, rng_state, counter, cursors = buffer_io.unpack(tensors, meta, self._capacities)
        self._tiers = {t: deque() for t in TIERS}
        self._by_prompt = {}
        for tier, traj in rows:
            self._tiers[tier].append(traj)
            self._by_prompt.setdefault(traj.prompt_id, {})[traj.insert_index] = traj
        self._insert_counter = counter
        self._fifo_cursor = cursors
        try:
            self._generator.set_state(rng_state)
        except RuntimeError as err:
            raise ValueError(
                f"replay buffer state: tensor rng_state is not a valid generator state: {err}"
            ) from err

    def save(self, directory: str | Path) -> None:
        """Write `replay_buffer.safetensors` and `replay_buffer.json` into `directory`."""
        tensors, meta = self.state_dict()
        buffer_io.write(Path(directory), tensors, meta)

    @classmethod
    def load(cls, directory: str | Path) -> HierarchicalReplayBuffer:
        """A buffer rebuilt from `save(directory)`, with the saved settings and RNG state."""
        tensors, meta, where = buffer_io.read(Path(directory))
        try:
            buffer = cls(**buffer_io.check_meta(meta)["config"])
            buffer.load_state_dict(tensors, meta)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}: {err}") from err
        return buffer
