"""Trajectory validation: every bad input names the prompt id and the field."""

from __future__ import annotations

import math

import pytest
import torch
from replay_helpers import build_traj as make_traj

from avatar_core.replay import Trajectory, TrajectoryError


def test_valid_trajectory_keeps_its_fields():
    traj = make_traj(
        "q7", length=4, reward=0.5, advantage=1.5, kl=0.02, rbar=0.3, policy_version=9, hinted=True
    )
    assert len(traj) == 4
    assert (traj.prompt_id, traj.reward, traj.advantage, traj.kl, traj.rbar) == ("q7", 0.5, 1.5, 0.02, 0.3)
    assert traj.policy_version == 9 and traj.hinted and traj.insert_index == -1


@pytest.mark.parametrize("field", ["reward", "advantage", "kl", "rbar"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_scalar_names_prompt_and_field(field, value):
    kwargs = {"reward": 1.0, field: value}
    with pytest.raises(TrajectoryError, match=rf"prompt 'clip-42'.*field {field} must be finite"):
        make_traj("clip-42", **kwargs)


def test_length_mismatch_names_both_lengths():
    with pytest.raises(
        TrajectoryError, match=r"prompt 'q1'.*behaviour_logp has 2 entries.*completion_ids has 3"
    ):
        Trajectory("q1", torch.tensor([1, 2, 3]), torch.zeros(2), reward=1.0)


def test_padded_batch_shape_is_rejected():
    with pytest.raises(TrajectoryError, match=r"must be 1-D.*\(2, 3\)"):
        Trajectory("q1", torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), reward=1.0)


def test_float_ids_and_non_finite_logp_are_rejected():
    with pytest.raises(TrajectoryError, match="completion_ids must be an integer tensor"):
        Trajectory("q1", torch.zeros(3), torch.zeros(3), reward=1.0)
    with pytest.raises(TrajectoryError, match="behaviour_logp contains NaN or inf"):
        Trajectory("q1", torch.zeros(2, dtype=torch.long), torch.tensor([0.0, math.nan]), reward=1.0)


def test_empty_prompt_id_and_bad_version_are_rejected():
    with pytest.raises(TrajectoryError, match="prompt_id must be a non-empty string"):
        Trajectory("", torch.zeros(1, dtype=torch.long), torch.zeros(1), reward=1.0)
    with pytest.raises(TrajectoryError, match="policy_version must be an int"):
        Trajectory("q", torch.zeros(1, dtype=torch.long), torch.zeros(1), reward=1.0, policy_version=1.5)


def test_stored_copy_owns_cpu_storage_with_canonical_dtypes():
    batch_ids = torch.arange(12, dtype=torch.int32).reshape(3, 4)  # [B, L] padded batch
    batch_logp = torch.full((3, 4), -0.5, dtype=torch.float64)  # [B, L]
    row = Trajectory("q", batch_ids[1, :3], batch_logp[1, :3], reward=1.0)
    stored = row.stored_copy(insert_index=5)
    assert stored.insert_index == 5 and row.insert_index == -1
    assert stored.completion_ids.dtype == torch.long and stored.behaviour_logp.dtype == torch.float32
    assert stored.completion_ids.tolist() == [4, 5, 6]
    assert stored.completion_ids.untyped_storage().nbytes() == 3 * 8  # not the whole batch
    batch_ids[1, 0] = 99
    assert stored.completion_ids[0] == 4
