"""The RL stage loop shared by S1, S2 and S3: GRPO or AVATAR, read top to bottom.

One step: sample prompts -> hint decision -> G rollouts each -> rewards (stage weights) ->
group advantages -> augment collapsed groups from the buffer -> mix replayed trajectories ->
objective (fused kernel or plain path, TAS) -> optimiser step -> buffer insert -> log ->
checkpoint. With `objective: grpo`, `tas.enabled: false`, `buffer.enabled: false` and hints off,
the step is plain GRPO (the baseline every comparison uses).

Where this departs from the paper or the authors' code:
- Replayed trajectories that do not join a collapsed group get baseline advantages
  (r - Rbar(q)) / (std + 1e-4), with std the standard deviation of the replayed batch's rewards,
  1 for a single row (as the released code) or a batch of equal rewards (`algos.replay_std`), and
  Rbar(q) as it was before this step's rewards were folded in (as the released code).
- `objective.offpolicy_mode: authors` reproduces the released code: replayed rows replace whole
  fresh groups (`objective.authors_replay_share`, 0.5 for its 4 of 8 mini-batches), get
  alpha * (r - Rbar) / (std + 1e-4) and go through the ordinary (on-policy) loss, no truncation.
  The released code keys prompts by rendered text; here they are keyed by id in both modes.
- One optimiser update per generation batch (mu = 1), so fresh rows have ratio 1 at the update
  and only replayed rows are off-policy.
- Multi-process runs (`accelerate launch`, `distributed.num_processes`) either replicate the
  model and average gradients explicitly with an all-reduce after backward (rollouts and the loss
  call the unwrapped model, so it is not wrapped in DDP), or shard it with FSDP2
  (`distributed.sharding: fsdp2`, recipes/distributed.py). Each process samples its own prompts
  and keeps its own buffer, tracker and random streams (checkpointed per process), and the tier
  thresholds use Rbar statistics gathered from all processes.
- With LoRA (`model.lora.enabled`) only a fresh adapter trains and the KL reference is the same
  model with the adapter off (recipes/policy.py).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from avatar_core.algos.advantages import (
    augmented_group_advantages,
    baseline_advantages,
    group_advantages,
    replay_std,
)
from avatar_core.algos.kl import k3_kl
from avatar_core.algos.params import ObjectiveParams
from avatar_core.config import AvatarConfig, RLStageConfig
from avatar_core.data.schema import render_messages
from avatar_core.faults import fault_point, poisoned
from avatar_core.recipes import checkpoint as ckpt
from avatar_core.recipes.common import (
    decodable,
    load_hints,
    load_samples,
    media_root,
    open_clips,
    previous_stage,
    seed_everything,
    write_json,
)
from avatar_core.recipes.guards import NonFiniteGuard, advance_schedule, checkpoint_note
from avatar_core.recipes.metrics import StepLog, publish
from avatar_core.recipes.policy import (
    load_trainable_policy,
    reference_policy,
    save_stage_policy,
    stage_identity,
)
from avatar_core.recipes.rl_batch import (
    Row,
    collate,
    rows_from_rollouts,
    rows_from_trajectories,
    to_trajectory,
)
from avatar_core.recipes.rl_parts import (
    Distributed,
    build_optimizer,
    objective_step,
    reward_columns,
    stage_rewards,
)
from avatar_core.replay.buffer import HierarchicalReplayBuffer
from avatar_core.replay.difficulty import DifficultyTracker, tier_thresholds
from avatar_core.replay.hints import HintTrigger, hint_outcomes
from avatar_core.rewards import combine_rewards

log = logging.getLogger(__name__)


def prompt_pool(samples: list, max_prompts: int | None) -> list:
    """At most `max_prompts` samples, the same number from each task (the first by id)."""
    if max_prompts is None or len(samples) <= max_prompts:
        return samples
    tasks = sorted({s.task for s in samples})
    per_task = max(1, max_prompts // len(tasks))
    by_task = {t: sorted((s for s in samples if s.task == t), key=lambda s: s.id)[:per_task] for t in tasks}
    return [s for t in tasks for s in by_task[t]]


def objective_params(scfg: RLStageConfig) -> ObjectiveParams:
    o = scfg.objective
    return ObjectiveParams(
        loss_type=o.loss_type,
        eps_low=o.eps_low,
        eps_high=o.eps_high,
        beta=o.beta,
        alpha=o.alpha if o.offpolicy_mode == "separate" else 0.0,
        rho_max=o.rho_max,
        tas_lambda=scfg.tas.lam if scfg.tas.enabled else 0.0,
        max_len=scfg.generation.max_new_tokens,
    )


class StepHook(Protocol):
    """Called by `run_rl` around the loop, e.g. to evaluate at fixed completion budgets (ablation)."""

    def start(self, step: int, bundle) -> None:
        """The loop starts (or resumes) at `step` with the policy `bundle`; drop anything recorded
        after that step."""

    def after_step(self, step: int, completions: int, bundle) -> None:
        """One optimiser step is done; `completions` counts every completion generated so far."""


def run_rl(
    cfg: AvatarConfig,
    stage: str,
    progress: bool = True,
    *,
    init_stage: str | None = None,
    hook: StepHook | None = None,
    start_identity: dict | None = None,
) -> dict:
    """Run one RL stage; `init_stage` names the checkpoint it starts from (default: the stage
    before it in the curriculum), `hook` is called after every step, `start_identity` is
    `stage_identity(cfg, init_stage)` when the caller has it already (an ablation cell: a real
    checkpoint's digest reads gigabytes)."""
    scfg = cfg.rl.stage(stage)
    out_dir, run_dir = Path(cfg.paths.rl_dir) / stage, Path(cfg.paths.runs_dir) / stage
    init_stage = init_stage or previous_stage(stage)
    identity = start_identity if start_identity is not None else stage_identity(cfg, init_stage)
    fp = ckpt.fingerprint(stage, cfg.seed, scfg.model_dump(mode="json"), identity)
    done = out_dir / "done.json"
    if done.is_file() and _read_json(done).get("fingerprint") == fp:
        log.info("stage %s is up to date (%s); nothing to do", stage, done)
        return _read_json(done)

    # Model code is imported here, not at module top, so `avatar --help` and config checks stay fast.
    from avatar_core.models.generation import completion_logprobs, generate_rollouts
    from avatar_core.models.inputs import encode_prompts
    from avatar_core.models.kinds import fit_samples

    # the stage's tasks are checked against the data set before any model is loaded
    train = load_samples(cfg, "train", scfg.tasks, key=f"rl.{stage}.tasks")
    dist = Distributed.setup(cfg.distributed)
    seed_everything(cfg.seed + 1000 * dist.rank)
    bundle = load_trainable_policy(cfg, init_stage, dist)
    model = bundle.model
    model.train()
    needs_ref = scfg.objective.beta > 0 or (scfg.hints.enabled and scfg.hints.use_kl_trigger)
    ref = reference_policy(cfg, bundle, init_stage, dist) if needs_ref else None

    clips = open_clips(cfg)
    fitted, unfit = fit_samples(bundle.kind, train, cfg.model.unsupported_media, f"rl {stage}")
    samples, rejected = decodable(prompt_pool(fitted, scfg.max_prompts), clips)
    rejected = unfit + rejected
    if not samples:
        raise ValueError(
            f"{cfg.paths.data_dir}: no training sample of rl.{stage}.tasks has media in the store"
            " that the model can take"
        )
    by_id = {s.id: s for s in samples}
    hints = load_hints(cfg, samples)
    reward_fns, weights, judge_cache = stage_rewards(scfg, media_root(cfg), run_dir)
    params = objective_params(scfg)
    optimizer, scheduler = build_optimizer(model, scfg.optim, scfg.steps)
    tracker = DifficultyTracker(scfg.difficulty.mode, scfg.difficulty.window, scfg.difficulty.ema_decay)
    b = scfg.buffer
    buffer = HierarchicalReplayBuffer(
        b.capacity,
        b.tiers.model_dump(),
        b.sampling,
        b.priority_temperature,
        b.kl_penalty,
        seed=cfg.seed + dist.rank,
    )
    trigger = HintTrigger(
        scfg.hints.zero_streak, scfg.hints.use_kl_trigger, scfg.hints.tau_reward, scfg.hints.tau_kl
    )
    rng = np.random.default_rng(cfg.seed + 7919 * dist.rank)
    # prompt_history: prompt id -> [step, hinted, group accuracy] per visit, for hint_outcomes
    state = {"step": 0, "completions": 0, "hinted_generations": 0, "prompt_history": {}}
    guard = NonFiniteGuard(f"rl.{stage}.optim.max_nonfinite_steps", scfg.optim.max_nonfinite_steps)
    steplog = StepLog(run_dir / "log.jsonl")

    resumed = ckpt.load_run(run_dir, fp, dist)
    if resumed is not None:
        saved_weights, trainer = resumed
        ckpt.restore_weights(model, saved_weights, dist)
        ckpt.restore_trainer(trainer, optimizer, scheduler, rng)
        tracker.load_state_dict(trainer["tracker"])
        buffer = HierarchicalReplayBuffer.load(Path(trainer["state_dir"]) / "buffer")
        state = trainer["counters"]
        state.setdefault("prompt_history", {})  # checkpoints written before it was kept
        guard.load_state_dict(trainer.get("nonfinite"))
        log.info(
            "resuming stage %s from step %d (%d completions)", stage, state["step"], state["completions"]
        )
    steplog.truncate_after(state["step"])
    saved_step = state["step"]
    if hook is not None:
        hook.start(state["step"], bundle)

    pad_id = bundle.tokenizer.pad_token_id
    bar = tqdm(
        total=scfg.steps, initial=state["step"], desc=f"rl {stage}", disable=not progress or dist.rank > 0
    )
    while state["step"] < scfg.steps:
        t0 = time.perf_counter()
        # 1. prompts and hint decisions
        n_prompts = min(scfg.prompts_per_step, len(samples))
        batch = [samples[i] for i in rng.choice(len(samples), size=n_prompts, replace=False)]
        # the next step's prompts, drawn from a copy of rng (its state is untouched), load meanwhile
        upcoming = copy.deepcopy(rng).choice(len(samples), size=n_prompts, replace=False)
        clips.prefetch([samples[i] for i in upcoming])
        decisions = [
            trigger.decide(s.id, tracker, bool(hints.get(s.id))) if scfg.hints.enabled else (False, "")
            for s in batch
        ]
        hinted = [d[0] for d in decisions]
        messages = [
            render_messages(s, hint=hints.get(s.id) if h else None)
            for s, h in zip(batch, hinted, strict=True)
        ]

        # 2. rollouts from the current (behaviour) policy
        g = scfg.generation
        inputs = encode_prompts(bundle, messages, clips.get_many(batch))
        model.eval()
        with torch.no_grad(), dist.gathered(bundle):
            rollouts = generate_rollouts(
                bundle,
                inputs,
                group_size=scfg.group_size,
                max_new_tokens=g.max_new_tokens,
                temperature=g.temperature,
                top_p=g.top_p,
                top_k=g.top_k,
                synced=dist.sharded,
            )
        model.train()
        n_rows = rollouts.completion_ids.shape[0]
        state["completions"] += n_rows * dist.world
        state["hinted_generations"] += sum(scfg.group_size for h in hinted if h)
        t_gen = time.perf_counter()

        # 3. rewards with the stage's weights
        prompt_of_row = rollouts.prompt_index.tolist()
        row_samples = [batch[p] for p in prompt_of_row]
        rewards, per_reward = combine_rewards(
            rollouts.texts, reward_columns(row_samples), weights, reward_fns
        )
        reward_t = torch.tensor(rewards, dtype=torch.float32)  # [N]
        t_rew = time.perf_counter()

        # 4. group advantages, difficulty, per-prompt KL to the reference
        advantages, adv_stats = group_advantages(reward_t, rollouts.prompt_index)  # [N]
        kl_per_prompt = [None] * len(batch)
        if ref is not None:
            with torch.no_grad():
                ref_lp = completion_logprobs(
                    ref,
                    inputs,
                    rollouts.completion_ids,
                    rollouts.completion_mask,
                    rollouts.prompt_index,
                    temperature=g.temperature,
                ).cpu()  # [N, L]
            kl_tok = k3_kl(rollouts.behaviour_logp, ref_lp) * rollouts.completion_mask  # [N, L]
            for p in range(len(batch)):
                rows_p = rollouts.prompt_index == p  # [N]
                kl_per_prompt[p] = float(
                    kl_tok[rows_p].sum() / rollouts.completion_mask[rows_p].sum().clamp(min=1)
                )
        rbar_before = tracker.values()  # replay baselines use Rbar before this step's rewards (authors)
        accuracy = [float(v or 0.0) for v in per_reward.get("accuracy", [0.0] * n_rows)]  # [N] None: 0
        for p, s in enumerate(batch):
            in_group = [i for i in range(n_rows) if prompt_of_row[i] == p]
            group_acc = [accuracy[i] for i in in_group]
            tracker.update(
                s.id,
                [rewards[i] for i in in_group],
                kl=kl_per_prompt[p],
                streak_rewards=group_acc if scfg.hints.streak_reward == "accuracy" else None,
            )
            state["prompt_history"].setdefault(s.id, []).append(
                [state["step"] + 1, int(hinted[p]), sum(group_acc) / len(group_acc)]
            )
        rows = rows_from_rollouts(batch, hinted, rollouts, rewards, advantages)

        # 5. collapsed groups borrow same-prompt trajectories of other rewards from the buffer
        replay_on = b.enabled and scfg.objective.name == "avatar"
        extra_rows: list[Row] = []
        collapsed_after = 0
        for p, s in enumerate(batch):
            group_rewards = [rewards[i] for i in range(n_rows) if prompt_of_row[i] == p]
            if max(group_rewards) != min(group_rewards):
                continue
            extra = (
                buffer.augment_group(s.id, group_rewards, b.max_augment)
                if replay_on and b.augment_collapsed
                else []
            )
            if not extra:
                collapsed_after += 1
                continue
            fresh_adv, replay_adv = augmented_group_advantages(
                torch.tensor(group_rewards), torch.tensor([t.reward for t in extra])
            )
            for row, a in zip([r for r in rows if r.group == p], fresh_adv.tolist(), strict=True):
                row.advantage = a
            extra_rows += rows_from_trajectories(extra, by_id, replay_adv.tolist(), 0, shared_group=p)

        # 6. replayed trajectories with baseline advantages. `separate` (the paper): J_off rows added
        # to the update. `authors` (the released code): replayed rows replace whole fresh groups
        # (4 of 8 mini-batches there) and go through the ordinary loss with alpha-scaled advantages;
        # the replaced fresh groups still enter the buffer.
        replayed: list[Row] = []
        authors = scfg.objective.offpolicy_mode == "authors"
        kept_groups = len(batch)
        if replay_on and len(buffer) >= max(b.min_size, 1):
            if authors:
                kept_groups = len(batch) - round(scfg.objective.authors_replay_share * len(batch))
                n_replay = (len(batch) - kept_groups) * scfg.group_size
            else:
                n_replay = b.replay_per_step
            if n_replay > 0:
                trajs = buffer.sample(n_replay)
                r = torch.tensor([t.reward for t in trajs])  # [R]
                rbar = torch.tensor([rbar_before.get(t.prompt_id, t.rbar) for t in trajs])  # [R]
                adv = baseline_advantages(r, rbar, replay_std(r))  # [R]
                if authors:
                    adv = scfg.objective.alpha * adv
                replayed = rows_from_trajectories(trajs, by_id, adv.tolist(), group_start=len(batch))
            else:
                kept_groups = len(batch)
        train_rows = [row for row in rows + extra_rows if row.group < kept_groups] + replayed
        if authors:
            for row in train_rows:
                row.is_replay = False  # the released code sends replayed rows through the ordinary loss
        t_buf = time.perf_counter()

        # 7. objective and optimiser step
        tb = collate(bundle, train_rows, clips, hints, pad_id)
        loss, obj_stats = objective_step(bundle, ref, tb, params, scfg, dist)
        loss = poisoned("rl.loss", loss)
        t_loss = time.perf_counter()
        grad_norm = dist.clip_grad_norm_(model, scfg.optim.max_grad_norm)
        # every process takes the same decision: the gradient norm is global, the losses gathered
        applied = guard.admit(state["step"] + 1, float(sum(dist.gather_floats([loss]))), grad_norm)
        if applied:
            optimizer.step()
        advance_schedule(scheduler)
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        divergence = dist.parameter_divergence(model)  # replicas must stay identical after each update
        t_opt = time.perf_counter()

        # 8. this step's fresh trajectories join the buffer (tiers from Rbar quantiles over all processes);
        # a skipped step's are left out: their log-probs may be as broken as its loss
        if replay_on and applied:
            thresholds = tier_thresholds(
                dist.gather_floats(list(tracker.values().values())), (b.quantiles.hard, b.quantiles.medium)
            )
            for row in rows:
                kl = kl_per_prompt[row.group] or 0.0
                buffer.add(
                    to_trajectory(row, kl, tracker.rbar(row.sample.id) or 0.0, state["step"]), thresholds
                )

        # 9. metrics
        acc = [v for v in per_reward.get("accuracy", []) if v is not None]
        fmt = [v for v in per_reward.get("format", []) if v is not None]
        record = {
            "step": state["step"],
            "completions": state["completions"],
            "loss": float(loss),
            "reward_mean": float(np.mean(rewards)),
            **{
                f"reward_{k}": float(np.mean([v for v in vals if v is not None] or [0.0]))
                for k, vals in per_reward.items()
            },
            "accuracy": float(np.mean(acc)) if acc else None,
            "format": float(np.mean(fmt)) if fmt else None,
            "zero_adv_frac_before": adv_stats["zero_adv_group_frac"],
            "zero_adv_frac_after": collapsed_after / len(batch),
            "hint_rate": sum(hinted) / len(batch),
            "hint_reasons": [d[1] for d in decisions if d[0]],
            "replay_rows": len(replayed),
            "fresh_rows_trained": len(train_rows) - len(replayed),
            **({} if applied else {"skipped": True}),
            "world_size": dist.world,
            "param_divergence": divergence,
            "augment_rows": len(extra_rows),
            **{f"buffer_{k}": v for k, v in buffer.tier_sizes().items()},
            **obj_stats,
            **(judge_cache.step_stats() if judge_cache is not None else {}),
            "time_generation": t_gen - t0,
            "time_reward": t_rew - t_gen,
            "time_buffer": t_buf - t_rew,
            "time_loss_optim": t_opt - t_buf,
            "time_loss": t_loss - t_buf,  # collate, forward, backward (and the all-reduce)
            "time_optimizer": t_opt - t_loss,  # clipping, optimiser and scheduler step, replica check
        }
        if dist.rank == 0 and state["step"] % scfg.log_every == 0:
            steplog.append(record)
        bar.set_postfix(reward=f"{record['reward_mean']:.2f}", acc=f"{record['accuracy'] or 0:.2f}")
        bar.update(1)
        guard.check(state["step"], checkpoint_note(run_dir, saved_step, f"the {init_stage} checkpoint"))
        if hook is not None:
            hook.after_step(state["step"], state["completions"], bundle)
        fault_point("rl.step_done")

        # 10. checkpoint (model, optimiser, scheduler, RNG, buffer, tracker, counters), atomically
        # no periodic checkpoint inside a streak of skipped steps: the last one stays the last good one
        if (state["step"] % scfg.save_every == 0 and guard.streak == 0) or state["step"] == scfg.steps:
            trainer = ckpt.trainer_state(
                fp,
                optimizer,
                scheduler,
                rng,
                tracker=tracker.state_dict(),
                counters=dict(state),
                nonfinite=guard.state_dict(),
            )
            ckpt.save_run(run_dir, model, trainer, buffer, dist)  # every process: it synchronises them
            saved_step = state["step"]
    bar.close()
    clips.close()  # its loader threads end with the stage (the ablation runs many in one process)

    result: dict = {}
    full_state = dist.full_state(model, trainable_only=cfg.model.lora.enabled)  # gathered shards (FSDP2)
    if dist.rank == 0:
        tmp = ckpt.atomic_dir(out_dir)
        save_stage_policy(cfg, bundle, tmp / "model", stage, full_state)
        fault_point("output.model_saved")
        hint_summary = hint_outcomes(state["prompt_history"])
        result = {
            "stage": stage,
            "fingerprint": fp,
            "steps": state["step"],
            "completions": state["completions"],
            "hinted_generations": state["hinted_generations"],
            "hints": hint_summary,
            "skipped_steps": guard.skipped,
            "rejected_samples": rejected,
        }
        write_json(tmp / "done.json", result)
        extra = {k: result[k] for k in ("completions", "hinted_generations", "skipped_steps")}
        extra |= {f"hints_{k}": v for k, v in hint_summary.items()}
        publish(steplog.read(), Path(cfg.paths.metrics_dir) / stage, extra=extra)
        fault_point("output.metrics_published")
        ckpt.commit_dir(tmp, out_dir)  # done.json lands last: a stage is finished only with its metrics
    dist.barrier()  # no process exits while rank 0 is still writing the stage's outputs
    return result


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
