"""Training rows for one RL update: fresh rollouts, augmented collapsed groups, replayed trajectories.

A `Row` is one completion with everything the objective needs. Fresh rows come from this step's
rollouts; replayed rows come from the hierarchical buffer and keep the behaviour log-probs stored
when they were generated (the importance-sampling denominator of J_off). Rows are collated into
padded tensors with one encoded prompt per distinct (prompt id, hinted) pair: a replayed
trajectory is re-encoded from its sample, with its hint if it was generated with one, so the
buffer never holds decoded video.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avatar_core.data.schema import Sample, render_messages
from avatar_core.replay.trajectory import Trajectory


@dataclass
class Row:
    sample: Sample
    completion_ids: torch.Tensor  # [L] long, no padding
    behaviour_logp: torch.Tensor  # [L] float32
    reward: float
    advantage: float
    is_replay: bool
    hinted: bool
    group: int  # rows of one (possibly augmented) group share it; replayed rows get their own


@dataclass
class TrainBatch:
    inputs: object  # BatchFeature of the distinct prompts
    completion_ids: torch.Tensor  # [N, L] long
    mask: torch.Tensor  # [N, L] float
    behaviour_logp: torch.Tensor  # [N, L] float32
    advantages: torch.Tensor  # [N]
    is_replay: torch.Tensor  # [N] bool
    group_ids: torch.Tensor  # [N] long
    prompt_index: torch.Tensor  # [N] long

    def to(self, device: torch.device) -> TrainBatch:
        """The batch with every tensor on `device` (the model's); a no-op on CPU."""
        if device.type == "cpu":
            return self
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()}
        moved["inputs"] = self.inputs.to(device)
        return TrainBatch(**moved)


def rows_from_rollouts(
    samples: list[Sample], hinted: list[bool], rollouts, rewards: list[float], advantages: torch.Tensor
) -> list[Row]:
    """Unpad the rollouts of this step into rows; group = index of the prompt in `samples`."""
    rows = []
    for i in range(rollouts.completion_ids.shape[0]):
        p = int(rollouts.prompt_index[i])
        length = int(rollouts.completion_mask[i].sum())
        rows.append(
            Row(
                sample=samples[p],
                completion_ids=rollouts.completion_ids[i, :length].clone(),
                behaviour_logp=rollouts.behaviour_logp[i, :length].float().clone(),
                reward=float(rewards[i]),
                advantage=float(advantages[i]),
                is_replay=False,
                hinted=hinted[p],
                group=p,
            )
        )
    return rows


def rows_from_trajectories(
    trajs: list[Trajectory],
    samples_by_id: dict[str, Sample],
    advantages: list[float],
    group_start: int,
    shared_group: int | None = None,
) -> list[Row]:
    rows = []
    for k, (t, a) in enumerate(zip(trajs, advantages, strict=True)):
        rows.append(
            Row(
                sample=samples_by_id[t.prompt_id],
                completion_ids=t.completion_ids,
                behaviour_logp=t.behaviour_logp.float(),
                reward=t.reward,
                advantage=float(a),
                is_replay=True,
                hinted=t.hinted,
                group=shared_group if shared_group is not None else group_start + k,
            )
        )
    return rows


def to_trajectory(row: Row, kl: float, rbar: float, version: int) -> Trajectory:
    return Trajectory(
        prompt_id=row.sample.id,
        completion_ids=row.completion_ids,
        behaviour_logp=row.behaviour_logp,
        reward=row.reward,
        advantage=row.advantage,
        kl=kl,
        rbar=rbar,
        policy_version=version,
        hinted=row.hinted,
    )


def collate(bundle, rows: list[Row], clips, hints: dict[str, str], pad_id: int) -> TrainBatch:
    """Pad rows into tensors and encode each distinct (prompt, hinted) pair once."""
    from avatar_core.models.inputs import encode_prompts

    keys: dict[tuple[str, bool], int] = {}
    messages, prompt_clips = [], []
    prompt_index = []
    for row in rows:
        key = (row.sample.id, row.hinted)
        if key not in keys:
            keys[key] = len(keys)
            hint = hints.get(row.sample.id) if row.hinted else None
            messages.append(render_messages(row.sample, hint=hint))
            prompt_clips.append(clips.get(row.sample))
        prompt_index.append(keys[key])
    inputs = encode_prompts(bundle, messages, prompt_clips)
    n, length = len(rows), max(int(r.completion_ids.numel()) for r in rows)
    ids = torch.full((n, length), pad_id, dtype=torch.long)  # [N, L]
    mask = torch.zeros(n, length)  # [N, L]
    behaviour = torch.zeros(n, length)  # [N, L]
    for i, row in enumerate(rows):
        k = int(row.completion_ids.numel())
        ids[i, :k] = row.completion_ids
        mask[i, :k] = 1.0
        behaviour[i, :k] = row.behaviour_logp
    return TrainBatch(
        inputs=inputs,
        completion_ids=ids,
        mask=mask,
        behaviour_logp=behaviour,
        advantages=torch.tensor([r.advantage for r in rows], dtype=torch.float32),  # [N]
        is_replay=torch.tensor([r.is_replay for r in rows], dtype=torch.bool),  # [N]
        group_ids=torch.tensor([r.group for r in rows], dtype=torch.long),  # [N]
        prompt_index=torch.tensor(prompt_index, dtype=torch.long),  # [N]
    )
