"""Pieces of the RL loop that are not the loop: optimiser, rewards, the loss call.

Kept apart so that recipes/rl.py reads as the algorithm. Nothing here decides anything about the
method; it wires configured objects to the pure functions in algos/, kernels/ and rewards/.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from avatar_core.algos.objectives import compute_objective
from avatar_core.algos.params import ObjectiveParams
from avatar_core.config import OptimConfig, RLStageConfig
from avatar_core.data.schema import Sample
from avatar_core.recipes.distributed import Distributed
from avatar_core.rewards import build_reward_fns

log = logging.getLogger(__name__)


TOWER_PREFIXES = {"vision": "visual.", "audio": "audio_tower."}  # the encoders, under any wrapper's prefix


def tower_of(name: str) -> str | None:
    """The encoder a parameter belongs to ("vision" for model.visual.blocks.0..., "audio"), or None."""
    for tower, prefix in TOWER_PREFIXES.items():
        if f".{prefix}" in f".{name}":
            return tower
    return None


def is_tower_parameter(name: str) -> bool:
    """Whether a parameter belongs to the vision or audio encoder."""
    return tower_of(name) is not None


def tower_lr_scales(optim: OptimConfig) -> dict[str, float]:
    """Each encoder's share of the learning rate: its own setting, else `tower_lr_scale`."""
    own = {"vision": optim.vision_lr_scale, "audio": optim.audio_lr_scale}
    return {tower: optim.tower_lr_scale if own[tower] is None else own[tower] for tower in TOWER_PREFIXES}


def build_optimizer(model: torch.nn.Module, optim: OptimConfig, total_steps: int):
    """AdamW over the trainable parameters; each encoder at its share of lr (frozen at 0)."""
    scales = tower_lr_scales(optim)
    params: dict[str | None, list[torch.nn.Parameter]] = {None: [], **{t: [] for t in TOWER_PREFIXES}}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        tower = tower_of(name)
        if tower is not None and scales[tower] == 0:
            p.requires_grad_(False)
            continue
        params[tower].append(p)
    groups = [{"params": params[None], "lr": optim.lr}]
    groups += [
        {"params": params[tower], "lr": optim.lr * scales[tower]} for tower in TOWER_PREFIXES if params[tower]
    ]
    # FSDP2 mixes sharded (DTensor) and replicated parameters; the fused multi-tensor path
    # cannot take both in one list, the per-parameter path can.
    mixed = any(type(p).__name__ == "DTensor" for g in groups for p in g["params"])
    optimizer = torch.optim.AdamW(
        groups, lr=optim.lr, weight_decay=optim.weight_decay, foreach=False if mixed else None
    )

    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / (optim.warmup_steps + 1)
        progress = (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps)
        if optim.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        if optim.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def stage_rewards(
    scfg: RLStageConfig, media_root: str | Path | None = None, run_dir: str | Path | None = None
):
    """Reward callables for the stage's weights, and the judge's cache (None without a judge).

    The judge is the one `reward_options` describe (rule-based, in-process or served VLM); its
    scores are cached in `run_dir` and timed per step (`JudgeCache.step_stats`).
    """
    opts = scfg.reward_options
    judge = cache = None
    if "judge" in scfg.rewards:
        from avatar_core.models.judge_factory import build_judge, open_judge_cache

        judge = build_judge(opts, media_root)
        cache = open_judge_cache(judge, opts, run_dir)
    fns = build_reward_fns(
        scfg.rewards,
        numeric_mode=opts.numeric_mode,
        numeric_tol=opts.numeric_tol,
        judge=judge,
        judge_cache=cache,
    )
    return fns, dict(scfg.rewards), cache


def reward_columns(samples: list[Sample]) -> dict[str, list]:
    """Sample fields as reward columns, one entry per completion (TRL's convention)."""
    return {
        "id": [s.id for s in samples],
        "answer": [s.answer for s in samples],
        "answer_type": [s.answer_type for s in samples],
        "choices": [list(s.choices) for s in samples],
        "facts": [s.facts for s in samples],
        "video": [s.video for s in samples],
        "question": [s.question for s in samples],
    }


def objective_step(bundle, ref, tb, params: ObjectiveParams, scfg: RLStageConfig, dist: Distributed):
    """Forward the policy on the batch's completions, compute the objective, backward, sync grads."""
    from avatar_core.models.generation import completion_hidden_states, completion_logprobs

    temperature = scfg.generation.temperature
    name = scfg.objective.name
    tb = tb.to(dist.device)
    ref_logp = None
    if params.beta > 0:
        with torch.no_grad():
            ref_logp = completion_logprobs(
                ref, tb.inputs, tb.completion_ids, tb.mask, tb.prompt_index, temperature=temperature
            )  # [N, L]
    head = bundle.lm_head()
    common = dict(ref_logp=ref_logp, is_replay=tb.is_replay, group_ids=tb.group_ids)
    if head is not None:
        hidden = completion_hidden_states(
            bundle, tb.inputs, tb.completion_ids, tb.mask, tb.prompt_index
        )  # [N, L, H]
        if scfg.objective.use_fused_kernel:
            from avatar_core.kernels import fused_objective

            loss, stats, _ = fused_objective(
                hidden,
                head.weight,
                tb.completion_ids,
                tb.mask,
                tb.behaviour_logp,
                tb.advantages,
                params,
                objective=name,
                temperature=temperature,
                lm_head_bias=head.bias,
                **common,
            )
        else:
            logits = head(hidden).float() / temperature  # [N, L, V]
            logp = (
                torch.log_softmax(logits, -1).gather(-1, tb.completion_ids.unsqueeze(-1)).squeeze(-1)
            )  # [N, L]
            loss, stats = compute_objective(
                name, logp, tb.behaviour_logp, tb.advantages, tb.mask, params, **common
            )
    else:
        log.debug("LM head not reachable: plain objective on teacher-forced log-probs")
        logp = completion_logprobs(
            bundle, tb.inputs, tb.completion_ids, tb.mask, tb.prompt_index, temperature=temperature
        )  # [N, L]
        loss, stats = compute_objective(
            name, logp, tb.behaviour_logp, tb.advantages, tb.mask, params, **common
        )
    loss.backward()
    dist.average_gradients(bundle.model)
    return float(loss.detach()), {k: float(v) for k, v in stats.items()}
