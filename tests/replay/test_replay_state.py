"""Replay buffer state: safetensors + JSON round trip (bit-exact, same next draws), corrupt or
missing files named in the error, a 10,000-entry buffer."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from replay_helpers import THRESHOLDS, build_traj
from safetensors.torch import load_file, save_file

from avatar_core.replay import TIERS, DifficultyTracker, HierarchicalReplayBuffer, Trajectory
from avatar_core.replay.buffer_io import META_FILE, TENSOR_FILE


def _random_trajectory(i: int, gen: torch.Generator) -> Trajectory:
    length = int(torch.randint(0, 9, (1,), generator=gen))  # an empty completion included now and then
    return Trajectory(
        prompt_id=f"clip-{i % 13}",
        completion_ids=torch.randint(0, 151_936, (length,), generator=gen),
        behaviour_logp=-torch.rand(length, generator=gen) * 5,
        reward=float(torch.rand(1, generator=gen, dtype=torch.float64)),
        advantage=float(torch.randn(1, generator=gen, dtype=torch.float64)),
        kl=float(torch.rand(1, generator=gen, dtype=torch.float64)) / 7,
        rbar=float(torch.rand(1, generator=gen, dtype=torch.float64)),
        policy_version=i // 4,
        hinted=i % 5 == 0,
    )


def _busy_buffer(sampling: str) -> HierarchicalReplayBuffer:
    buffer = HierarchicalReplayBuffer(
        capacity=30, sampling=sampling, temperature=0.7, kl_penalty=0.2, seed=17
    )
    gen = torch.Generator().manual_seed(0)
    for i in range(80):  # evictions in every tier
        buffer.add(_random_trajectory(i, gen), (0.3, 0.6))
        if i % 9 == 0:
            buffer.sample(5)  # moves the RNG and the FIFO cursors
    return buffer


def _assert_same_contents(a: HierarchicalReplayBuffer, b: HierarchicalReplayBuffer) -> None:
    assert a.tier_capacities() == b.tier_capacities() and a.tier_sizes() == b.tier_sizes()
    for tier in TIERS:
        for x, y in zip(a.entries(tier), b.entries(tier), strict=True):
            for field in dataclasses.fields(Trajectory):
                vx, vy = getattr(x, field.name), getattr(y, field.name)
                if isinstance(vx, torch.Tensor):
                    assert vx.dtype == vy.dtype and torch.equal(vx, vy), field.name
                else:
                    assert type(vx) is type(vy) and vx == vy, field.name


@pytest.mark.parametrize("sampling", ["priority", "fifo"])
def test_save_load_round_trip_is_identical(tmp_path, sampling):
    buffer = _busy_buffer(sampling)
    buffer.save(tmp_path / "ckpt")
    restored = HierarchicalReplayBuffer.load(tmp_path / "ckpt")
    assert (restored.sampling, restored.temperature, restored.kl_penalty) == (sampling, 0.7, 0.2)
    _assert_same_contents(buffer, restored)
    for _ in range(5):  # the next draws continue identically
        assert [t.insert_index for t in buffer.sample(7)] == [t.insert_index for t in restored.sample(7)]
    extra = build_traj("new", rbar=0.1)
    assert buffer.add(extra, THRESHOLDS) == restored.add(extra, THRESHOLDS)
    _assert_same_contents(buffer, restored)
    assert buffer.same_prompt("clip-3")[-1].insert_index == restored.same_prompt("clip-3")[-1].insert_index


def test_state_dict_round_trip_in_memory_and_tracker_alongside(tmp_path):
    buffer = _busy_buffer("priority")
    tracker = DifficultyTracker(window=5)
    tracker.update("clip-1", [0.0, 1.0, 0.5], kl=0.01)
    tensors, meta = buffer.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    meta = json.loads(json.dumps(meta))  # metadata is plain JSON
    other = HierarchicalReplayBuffer(
        capacity=30, sampling="priority", temperature=0.7, kl_penalty=0.2, seed=99
    )
    other.load_state_dict(tensors, meta)
    _assert_same_contents(buffer, other)
    assert [t.insert_index for t in buffer.sample(9)] == [t.insert_index for t in other.sample(9)]
    (tmp_path / "tracker.json").write_text(json.dumps(tracker.state_dict()))
    tracker2 = DifficultyTracker(window=5)
    tracker2.load_state_dict(json.loads((tmp_path / "tracker.json").read_text()))
    assert tracker2.state_dict() == tracker.state_dict()


def test_empty_buffer_round_trip(tmp_path):
    HierarchicalReplayBuffer(capacity=5).save(tmp_path)
    restored = HierarchicalReplayBuffer.load(tmp_path)
    assert len(restored) == 0 and restored.tier_capacities() == {"easy": 1, "medium": 2, "hard": 2}


def test_load_state_into_a_differently_sized_buffer_is_rejected():
    tensors, meta = _busy_buffer("priority").state_dict()
    with pytest.raises(ValueError, match="field config.capacity was 30 when saved but this buffer has 40"):
        HierarchicalReplayBuffer(capacity=40).load_state_dict(tensors, meta)


def test_missing_state_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere' / TENSOR_FILE} is missing"):
        HierarchicalReplayBuffer.load(tmp_path / "nowhere")
    _busy_buffer("fifo").save(tmp_path)
    (tmp_path / META_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / META_FILE} is missing"):
        HierarchicalReplayBuffer.load(tmp_path)


def test_corrupt_state_files_are_named(tmp_path):
    _busy_buffer("fifo").save(tmp_path)
    meta_text = (tmp_path / META_FILE).read_text()
    (tmp_path / META_FILE).write_text(meta_text[: len(meta_text) // 2])
    with pytest.raises(ValueError, match=f"{tmp_path / META_FILE} is corrupt"):
        HierarchicalReplayBuffer.load(tmp_path)
    (tmp_path / META_FILE).write_text(meta_text)
    (tmp_path / TENSOR_FILE).write_bytes((tmp_path / TENSOR_FILE).read_bytes()[:100])
    with pytest.raises(ValueError, match=f"{tmp_path / TENSOR_FILE} is corrupt"):
        HierarchicalReplayBuffer.load(tmp_path)


def test_inconsistent_state_names_the_field(tmp_path):
    buffer = _busy_buffer("priority")
    buffer.save(tmp_path)
    tensors = load_file(str(tmp_path / TENSOR_FILE))
    meta = json.loads((tmp_path / META_FILE).read_text())

    def rewrite(new_tensors, new_meta):
        save_file(new_tensors, str(tmp_path / TENSOR_FILE))
        (tmp_path / META_FILE).write_text(json.dumps(new_meta))

    rewrite({k: v for k, v in tensors.items() if k != "offsets"}, meta)
    with pytest.raises(ValueError, match=f"replay buffer state in {tmp_path}: .*tensor offsets is missing"):
        HierarchicalReplayBuffer.load(tmp_path)
    rewrite(tensors, {**meta, "prompt_ids": meta["prompt_ids"][:-1]})
    with pytest.raises(ValueError, match="tensor hinted has shape"):
        HierarchicalReplayBuffer.load(tmp_path)
    rewrite({**tensors, "behaviour_logp": tensors["behaviour_logp"][:-1]}, meta)
    with pytest.raises(ValueError, match="must both hold offsets"):
        HierarchicalReplayBuffer.load(tmp_path)
    rewrite({**tensors, "reward": torch.full_like(tensors["reward"], float("nan"))}, meta)
    with pytest.raises(ValueError, match="row 0: trajectory of prompt 'clip-.*field reward must be finite"):
        HierarchicalReplayBuffer.load(tmp_path)
    rewrite(tensors, {**meta, "format": "pickle"})
    with pytest.raises(ValueError, match="field format must be 'avatar-replay-buffer', got 'pickle'"):
        HierarchicalReplayBuffer.load(tmp_path)
    rewrite({**tensors, "insert_index": tensors["insert_index"].flip(0)}, meta)
    with pytest.raises(ValueError, match="increasing insertion order"):
        HierarchicalReplayBuffer.load(tmp_path)


@pytest.mark.slow  # ~2-4 s: 12,000 inserts, a save and a load
def test_ten_thousand_entry_buffer_save_and_load(tmp_path):
    buffer = HierarchicalReplayBuffer()  # paper size: 10,000 in 2500 / 3500 / 4000
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 151_936, (12_000, 64), generator=gen)  # [N, L]
    logp = -torch.rand(12_000, 64, generator=gen)  # [N, L]
    rbar = torch.rand(12_000, generator=gen).tolist()
    for i in range(12_000):
        traj = Trajectory(f"q{i % 997}", ids[i], logp[i], reward=float(i % 2), rbar=rbar[i], policy_version=i)
        buffer.add(traj, (0.4, 0.75))
    assert len(buffer) == 10_000
    buffer.save(tmp_path)
    size = (tmp_path / TENSOR_FILE).stat().st_size + (tmp_path / META_FILE).stat().st_size
    assert size < 10_000 * 64 * 12 * 1.5  # ids (8 B) + log-probs (4 B) per token dominate
    restored = HierarchicalReplayBuffer.load(tmp_path)
    assert restored.tier_sizes() == buffer.tier_sizes() == {"easy": 2500, "medium": 3500, "hard": 4000}
    last = restored.entries("hard")[-1]
    assert torch.equal(last.completion_ids, ids[last.insert_index])
    assert torch.equal(last.behaviour_logp, logp[last.insert_index])
    assert [t.insert_index for t in buffer.sample(32)] == [t.insert_index for t in restored.sample(32)]
