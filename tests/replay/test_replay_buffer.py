"""HierarchicalReplayBuffer: capacities, FIFO eviction per tier, tier ratios, priority and FIFO
sampling, same-prompt augmentation of collapsed groups, bad input."""

from __future__ import annotations

import collections
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_helpers import RBAR_OF_TIER, THRESHOLDS, build_traj

from avatar_core.replay import TIERS, HierarchicalReplayBuffer
from avatar_core.replay.allocation import sample_counts, split_counts


def _fill(buffer: HierarchicalReplayBuffer, tiers: list[str], **fields) -> None:
    for i, tier in enumerate(tiers):
        buffer.add(build_traj(f"q{i}", rbar=RBAR_OF_TIER[tier], seed=i, **fields), THRESHOLDS)


def _indices(trajs) -> list[int]:
    return [t.insert_index for t in trajs]


# ----------------------------------------------------------------------------- capacities


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        (10_000, {"easy": 2500, "medium": 3500, "hard": 4000}),
        (10, {"easy": 3, "medium": 3, "hard": 4}),  # 2.5 / 3.5 / 4.0: the tie goes to easy
        (7, {"easy": 2, "medium": 2, "hard": 3}),  # 1.75 / 2.45 / 2.8
        (1, {"easy": 0, "medium": 0, "hard": 1}),
    ],
)
def test_tier_capacities_hand_worked(capacity, expected):
    assert HierarchicalReplayBuffer(capacity=capacity).tier_capacities() == expected


@settings(max_examples=100, deadline=None)
@given(capacity=st.integers(1, 50_000), a=st.integers(1, 98), b=st.integers(1, 98))
def test_tier_capacities_sum_exactly(capacity, a, b):
    if a + b >= 100:
        a, b = a // 2, b // 2
    ratios = {"easy": a / 100, "medium": b / 100, "hard": (100 - a - b) / 100}
    caps = HierarchicalReplayBuffer(capacity=capacity, ratios=ratios).tier_capacities()
    assert sum(caps.values()) == capacity
    for tier in TIERS:
        assert abs(caps[tier] - capacity * ratios[tier]) < 1


# ----------------------------------------------------------------------------- insertion, eviction


@settings(max_examples=80, deadline=None)
@given(capacity=st.integers(1, 40), tiers=st.lists(st.sampled_from(TIERS), max_size=120))
def test_capacities_hold_and_eviction_is_fifo_within_the_tier(capacity, tiers):
    buffer = HierarchicalReplayBuffer(capacity=capacity)
    caps = buffer.tier_capacities()
    reference: dict[str, list[int]] = {t: [] for t in TIERS}
    for i, tier in enumerate(tiers):
        assert buffer.add(build_traj(f"q{i % 7}", rbar=RBAR_OF_TIER[tier]), THRESHOLDS) == tier
        if caps[tier]:
            reference[tier] = (reference[tier] + [i])[-caps[tier] :]  # oldest of this tier leaves
        sizes = buffer.tier_sizes()
        assert all(sizes[t] <= caps[t] for t in TIERS)
        assert len(buffer) == sum(sizes.values()) <= capacity
    for tier in TIERS:
        assert _indices(buffer.entries(tier)) == reference[tier]


def test_hard_inflow_does_not_flush_easy_samples():
    buffer = HierarchicalReplayBuffer(capacity=20)  # easy 5, medium 7, hard 8
    _fill(buffer, ["easy"] * 3)
    _fill(buffer, ["hard"] * 50)
    assert _indices(buffer.entries("easy")) == [0, 1, 2]
    assert _indices(buffer.entries("hard")) == list(range(45, 53))
    _fill(buffer, ["easy"] * 3)  # now 6 easy inserts into 5 slots: only the oldest easy one goes
    assert _indices(buffer.entries("easy")) == [1, 2, 53, 54, 55]


def test_add_assigns_tier_from_rbar_and_thresholds():
    buffer = HierarchicalReplayBuffer(capacity=100)
    assert buffer.add(build_traj(rbar=0.24), (0.24, 0.55)) == "hard"
    assert buffer.add(build_traj(rbar=0.3), (0.24, 0.55)) == "medium"
    assert buffer.add(build_traj(rbar=0.9), (0.24, 0.55)) == "easy"
    assert buffer.tier_sizes() == {"easy": 1, "medium": 1, "hard": 1}


def test_returned_copies_do_not_change_the_buffer():
    buffer = HierarchicalReplayBuffer(capacity=10)
    _fill(buffer, ["hard"], advantage=1.0)
    buffer.sample(1)[0].advantage = 99.0
    assert buffer.entries("hard")[0].advantage == 1.0


# ----------------------------------------------------------------------------- tier proportions


def test_sample_counts_hand_worked():
    full = {"easy": 100, "medium": 100, "hard": 100}
    ratios = {"easy": 0.25, "medium": 0.35, "hard": 0.40}
    assert sample_counts(20, ratios, full) == {"easy": 5, "medium": 7, "hard": 8}
    assert sample_counts(7, ratios, full) == {"easy": 2, "medium": 2, "hard": 3}  # 1.75 / 2.45 / 2.8
    # easy holds 1 of its 2: the other 7 split over medium / hard as 0.35 : 0.40 -> 3.27 / 3.73
    assert sample_counts(8, ratios, {"easy": 1, "medium": 10, "hard": 10}) == {
        "easy": 1,
        "medium": 3,
        "hard": 4,
    }
    assert sample_counts(50, ratios, {"easy": 1, "medium": 2, "hard": 3}) == {
        "easy": 1,
        "medium": 2,
        "hard": 3,
    }
    assert sample_counts(5, ratios, {"easy": 0, "medium": 0, "hard": 9}) == {
        "easy": 0,
        "medium": 0,
        "hard": 5,
    }


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 60), sizes=st.tuples(*[st.integers(0, 30)] * 3))
def test_sample_counts_properties(n, sizes):
    ratios = {"easy": 0.25, "medium": 0.35, "hard": 0.40}
    size = dict(zip(TIERS, sizes, strict=True))
    counts = sample_counts(n, ratios, size)
    assert sum(counts.values()) == min(n, sum(sizes))
    assert all(0 <= counts[t] <= size[t] for t in TIERS)
    if all(size[t] >= n for t in TIERS):  # nobody short: plain largest remainder
        assert counts == split_counts(n, ratios)
        assert all(abs(counts[t] - n * ratios[t]) < 1 for t in TIERS)


def test_sampled_tier_proportions_over_many_draws():
    buffer = HierarchicalReplayBuffer(capacity=200, seed=3)  # 50 / 70 / 80
    _fill(buffer, ["easy"] * 50 + ["medium"] * 70 + ["hard"] * 80)
    tier_of = {t.insert_index: tier for tier in TIERS for t in buffer.entries(tier)}
    drawn: collections.Counter[str] = collections.Counter()
    for draw in range(300):
        batch = buffer.sample(10 + draw % 41)
        assert len({t.insert_index for t in batch}) == len(batch)  # without replacement
        drawn.update(tier_of[t.insert_index] for t in batch)
    total = sum(drawn.values())
    for tier, share in buffer.ratios.items():
        assert drawn[tier] / total == pytest.approx(share, abs=0.01)


def test_draw_larger_than_buffer_returns_everything():
    buffer = HierarchicalReplayBuffer(capacity=20)
    _fill(buffer, ["easy", "hard", "hard", "medium"])
    assert sorted(_indices(buffer.sample(50))) == [0, 1, 2, 3]
    assert buffer.sample(0) == [] and HierarchicalReplayBuffer().sample(4) == []


# ----------------------------------------------------------------------------- within-tier rules


def test_priority_draw_matches_exact_without_replacement_probabilities():
    buffer = HierarchicalReplayBuffer(capacity=10, temperature=0.5, kl_penalty=0.1, seed=11)
    scores = {}
    for i, (adv, kl) in enumerate([(0.0, 0.0), (0.3, 1.0), (0.5, 0.0)]):
        buffer.add(build_traj(f"q{i}", rbar=0.0, advantage=adv, kl=kl), THRESHOLDS)
        scores[i] = adv - 0.1 * kl
    weight = {i: math.exp((s - min(scores.values())) / 0.5) for i, s in scores.items()}
    total = sum(weight.values())
    expected = {  # ordered pairs: first drawn with w_i / W, second with w_j / (W - w_i)
        (i, j): weight[i] / total * weight[j] / (total - weight[i])
        for i, j in itertools.permutations(weight, 2)
    }
    draws = 6000
    observed = collections.Counter(tuple(_indices(buffer.sample(2))) for _ in range(draws))
    assert set(observed) <= set(expected)
    for pair, prob in expected.items():
        assert observed[pair] / draws == pytest.approx(prob, abs=4 * math.sqrt(prob * (1 - prob) / draws))


def test_priority_favours_high_advantage_and_low_kl():
    buffer = HierarchicalReplayBuffer(capacity=100, seed=5)
    for i in range(10):
        buffer.add(build_traj(f"q{i}", rbar=0.0, advantage=i / 3), THRESHOLDS)
    counts = collections.Counter(t.insert_index for _ in range(2000) for t in buffer.sample(1))
    assert counts[9] > counts[5] > counts[0]
    assert counts[9] / 2000 == pytest.approx(math.exp(3) / sum(math.exp(i / 3) for i in range(10)), abs=0.04)
    # the KL penalty pulls an entry down: equal advantages, KL 20 costs 2 in score
    tie = HierarchicalReplayBuffer(capacity=10, kl_penalty=0.1, seed=1)
    tie.add(build_traj("far", rbar=0.0, advantage=1.0, kl=20.0), THRESHOLDS)
    tie.add(build_traj("near", rbar=0.0, advantage=1.0, kl=0.0), THRESHOLDS)
    picks = collections.Counter(tie.sample(1)[0].prompt_id for _ in range(2000))
    assert picks["near"] / 2000 == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.04)


def test_priority_survives_huge_score_spread():
    buffer = HierarchicalReplayBuffer(capacity=10, temperature=1e-3)
    for i, adv in enumerate([-500.0, 0.0, 500.0]):
        buffer.add(build_traj(f"q{i}", rbar=0.0, advantage=adv), THRESHOLDS)
    assert _indices(buffer.sample(3)) == [2, 1, 0]


def test_fifo_sampling_serves_oldest_first_and_continues():
    buffer = HierarchicalReplayBuffer(capacity=10, sampling="fifo")  # hard tier holds 4
    _fill(buffer, ["hard"] * 6)  # 0 and 1 evicted
    assert _indices(buffer.sample(2)) == [2, 3]
    assert _indices(buffer.sample(1)) == [4]
    _fill(buffer, ["hard"] * 2)  # 2 and 3 evicted; 6 and 7 join
    assert _indices(buffer.sample(3)) == [5, 6, 7]
    assert _indices(buffer.sample(3)) == [4, 5, 6]  # wrapped around to the oldest


def test_fifo_sampling_per_tier():
    buffer = HierarchicalReplayBuffer(capacity=40, sampling="fifo")  # 10 / 14 / 16
    _fill(buffer, ["easy", "hard"] * 10)  # easy: even insert indices, hard: odd; medium empty
    # medium is empty, so 4 splits over easy : hard = 0.25 : 0.40 -> 1.54 / 2.46 -> 2 / 2
    assert _indices(buffer.sample(4)) == [0, 2, 1, 3]
    assert _indices(buffer.sample(4)) == [4, 6, 5, 7]


# ----------------------------------------------------------------------------- same prompt, collapse fix


def test_same_prompt_lists_oldest_first_and_forgets_evicted():
    buffer = HierarchicalReplayBuffer(capacity=10)  # hard holds 4
    for i in range(6):
        buffer.add(build_traj("a" if i % 2 else "b", rbar=0.0), THRESHOLDS)
    assert _indices(buffer.same_prompt("a")) == [3, 5]
    assert _indices(buffer.same_prompt("b")) == [2, 4]
    assert buffer.same_prompt("never") == []


def _grpo_advantages(rewards: list[float]) -> torch.Tensor:
    r = torch.tensor(rewards, dtype=torch.float64)  # [G]
    return (r - r.mean()) / (r.std() + 1e-4)  # [G]


@settings(max_examples=80, deadline=None)
@given(
    stored=st.lists(
        st.tuples(st.sampled_from(["p", "other"]), st.sampled_from([0.0, 0.5, 1.0])), max_size=12
    ),
    fresh_value=st.sampled_from([0.0, 0.5, 1.0]),
    max_extra=st.integers(1, 4),
)
def test_collapsed_group_is_augmented_with_differing_replays(stored, fresh_value, max_extra):
    buffer = HierarchicalReplayBuffer(capacity=1000)
    for i, (pid, reward) in enumerate(stored):
        buffer.add(build_traj(pid, reward=reward, rbar=0.0, seed=i), THRESHOLDS)
    fresh = [fresh_value] * 4
    extra = buffer.augment_group("p", fresh, max_extra)
    differing = [i for i, (pid, r) in enumerate(stored) if pid == "p" and r != fresh_value]
    assert _indices(extra) == differing[::-1][:max_extra]  # most recent first
    assert all(t.prompt_id == "p" for t in extra)
    advantages = _grpo_advantages(fresh + [t.reward for t in extra])
    if differing:  # the augmented group has a reward spread again
        assert bool((advantages.abs() > 0.1).any())
    else:
        assert extra == [] and bool((advantages == 0).all())


@settings(max_examples=80, deadline=None)
@given(
    stored=st.lists(
        st.tuples(st.sampled_from(["p", "other"]), st.sampled_from([0.0, 0.25, 1.0])), max_size=12
    ),
    group_size=st.integers(2, 8),
)
def test_all_zero_group_gets_nonzero_advantages_from_replays(stored, group_size):
    buffer = HierarchicalReplayBuffer(capacity=1000)
    for i, (pid, reward) in enumerate(stored):
        buffer.add(build_traj(pid, reward=reward, rbar=0.0, seed=i), THRESHOLDS)
    fresh = [0.0] * group_size
    extra = buffer.augment_group("p", fresh, max_extra=4)
    fresh_advantages = _grpo_advantages(fresh + [t.reward for t in extra])[:group_size]  # [G]
    if any(pid == "p" and reward != 0.0 for pid, reward in stored):
        assert bool((fresh_advantages < -0.1).all())  # failing completions are pushed down
    else:
        assert extra == [] and bool((fresh_advantages == 0).all())


def test_augment_leaves_varied_groups_alone():
    buffer = HierarchicalReplayBuffer(capacity=10)
    buffer.add(build_traj("p", reward=1.0, rbar=0.0), THRESHOLDS)
    assert buffer.augment_group("p", [0.0, 1.0], max_extra=4) == []
    assert buffer.augment_group("p", [0.0, 0.0], max_extra=0) == []
    assert _indices(buffer.augment_group("p", [0.0, 0.0], max_extra=4)) == [0]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("capacity", [0, -5])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match=f"capacity must be a positive int, got {capacity}"):
        HierarchicalReplayBuffer(capacity=capacity)


def test_bad_ratios_and_settings():
    with pytest.raises(ValueError, match="must sum to 1, got easy\\+medium\\+hard = 1.1"):
        HierarchicalReplayBuffer(ratios={"easy": 0.3, "medium": 0.4, "hard": 0.4})
    with pytest.raises(
        ValueError, match="unknown tier name\\(s\\) 'trivial'.*valid names: easy, medium, hard"
    ):
        HierarchicalReplayBuffer(ratios={"easy": 0.25, "medium": 0.35, "trivial": 0.4})
    with pytest.raises(ValueError, match="missing tier\\(s\\) hard"):
        HierarchicalReplayBuffer(ratios={"easy": 0.5, "medium": 0.5})
    with pytest.raises(ValueError, match="unknown replay sampling 'uniform'; valid names: priority, fifo"):
        HierarchicalReplayBuffer(sampling="uniform")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        HierarchicalReplayBuffer(temperature=0.0)
    with pytest.raises(ValueError, match="sample size must be an int >= 0, got -1"):
        HierarchicalReplayBuffer().sample(-1)


def test_add_rechecks_a_trajectory_changed_after_construction():
    traj = build_traj("clip-3")
    traj.reward = float("nan")
    with pytest.raises(ValueError, match="prompt 'clip-3'.*field reward must be finite"):
        HierarchicalReplayBuffer().add(traj, THRESHOLDS)
    with pytest.raises(ValueError, match="augment_group for prompt 'p'.*finite"):
        HierarchicalReplayBuffer().augment_group("p", [float("inf")], 2)
