"""Cold-start SFT (stage S0): teach the answer format and short reasoning traces.

The loss is the mean negative log-likelihood of the assistant tokens only (the reasoning trace
and the end-of-turn token), teacher-forced after the multimodal prompt. A share of the samples
(`sft.hint_fraction`) is rendered with its hint as a system message, so that a prompt hinted
during RL is not a prompt the model has never seen the like of (the paper's 7B models read any
instruction; a model trained from scratch reads only what it was trained on). Explicit loop: batches of
`batch_size`, `grad_accum` micro-batches per optimiser step, warm-up + schedule, periodic
validation loss, resumable checkpoints every `save_every` steps, the final model as safetensors
(or its LoRA adapter, recipes/policy.py).
A step with a non-finite loss or gradient is skipped (recipes/guards.py). The metrics are
published before the output folder is renamed into place, so a finished stage always has them.

Phases (differs from the paper, whose SFT is one pass over its data): `sft.warmup` trains some
families alone first (the preset tiny_locate_first: `locate`, where one square is, which the tiny
decoder learns only on its own and which localise needs; off in the default), then the main phase
trains `sft.tasks`.
Each phase has its own optimiser state, schedule and sample order, so a warm-up run equals an SFT
on the warm-up families followed by a second SFT started from its model (tests/recipes checks it
byte for byte); global step numbers run on across phases and warm-up log records say `phase`.

With several processes the sample order is global: each optimiser step takes
`batch_size x grad_accum x processes` samples and process r trains on its r-th slice of every
micro-batch group, so N processes compute the same update as one process with N times the
gradient accumulation (tests/recipes/test_sharded.py checks it to 1e-5 under FSDP2).
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from avatar_core.config import AvatarConfig
from avatar_core.data.schema import Sample, render_messages
from avatar_core.faults import fault_point, poisoned
from avatar_core.recipes import checkpoint as ckpt
from avatar_core.recipes.common import (
    ClipLoader,
    decodable,
    load_hints,
    load_samples,
    open_clips,
    seed_everything,
    write_atomic,
    write_json,
)
from avatar_core.recipes.distributed import Distributed
from avatar_core.recipes.guards import NonFiniteGuard, advance_schedule, checkpoint_note
from avatar_core.recipes.metrics import StepLog
from avatar_core.recipes.policy import base_location, load_trainable_policy, save_stage_policy, stage_identity
from avatar_core.recipes.rl_parts import build_optimizer

log = logging.getLogger(__name__)


def target_ids(tokenizer, sample: Sample) -> torch.Tensor:
    """Assistant tokens of a sample: its reasoning trace followed by the end-of-turn token."""
    ids = tokenizer(sample.reasoning, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)  # [L]


def hinted_in_sft(seed: int, step: int, sample_id: str, fraction: float) -> bool:
    """Whether a sample is rendered with its hint at this optimiser step: a fixed share of the
    samples, chosen by a hash of (seed, step, id), so a resumed run makes the same choices."""
    if fraction <= 0:
        return False
    return zlib.crc32(f"{seed}:{step}:{sample_id}".encode()) / 2**32 < fraction


def sft_loss(
    bundle, samples: list[Sample], clips: ClipLoader, hints: list[str | None] | None = None
) -> torch.Tensor:
    """Mean NLL per assistant token over a micro-batch; `hints[i]` renders sample i with a hint."""
    from avatar_core.models.generation import completion_logprobs, right_padded
    from avatar_core.models.inputs import encode_prompts

    hints = hints or [None] * len(samples)
    messages = [render_messages(s, hint=h) for s, h in zip(samples, hints, strict=True)]
    inputs = encode_prompts(bundle, messages, clips.get_many(samples))
    targets = [target_ids(bundle.tokenizer, s) for s in samples]
    ids, mask = right_padded(targets, bundle.tokenizer.pad_token_id)  # [B, L]
    logp = completion_logprobs(bundle, inputs, ids, mask, torch.arange(len(samples)))  # [B, L]
    mask = mask.to(logp.device)  # [B, L]
    return -(logp * mask).sum() / mask.sum()


@dataclass
class Phase:
    """One phase of the SFT run: its training and validation samples and its optimiser steps,
    which occupy global steps `first + 1 .. first + steps`."""

    name: str  # "warmup" | "main"
    train: list[Sample]
    val: list[Sample]
    steps: int
    first: int


def phase_data(
    cfg: AvatarConfig, bundle, clips: ClipLoader, samples: list[Sample], tasks, key: str, reported: set[str]
):
    """(train, val, rejected) for one phase: `samples` are its training samples (load_samples of its
    `tasks`, named by params key `key`); train keeps those that decode and have a trace. `reported`
    holds the ids already logged as skipped (a warm-up family's samples are the main phase's too)."""
    from avatar_core.models.kinds import fit_samples

    policy = cfg.model.unsupported_media
    fitted, unfit = fit_samples(bundle.kind, samples, policy, "sft train")
    train, rejected = decodable(fitted, clips, reported)
    train = [s for s in train if s.reasoning]
    if not train:
        raise ValueError(
            f"{cfg.paths.data_dir}: no training sample with a reasoning trace (field reasoning) "
            f"decodes{f' for {key}' if tasks else ''}; SFT has nothing to learn from"
        )
    val_fitted = fit_samples(bundle.kind, validation_samples(cfg, tasks), policy, "sft val")[0]
    val = decodable(val_fitted, clips, reported)[0]
    return train, val, unfit + rejected


def run_sft(cfg: AvatarConfig, progress: bool = True) -> dict:
    scfg = cfg.sft
    out_dir, run_dir = Path(cfg.paths.sft_dir), Path(cfg.paths.runs_dir) / "sft"
    fp = ckpt.fingerprint("sft", cfg.seed, scfg.model_dump(mode="json"), stage_identity(cfg, "base"))
    if (out_dir / "done.json").is_file() and json.loads((out_dir / "done.json").read_text()).get(
        "fingerprint"
    ) == fp:
        log.info("sft is up to date; nothing to do")
        return json.loads((out_dir / "done.json").read_text())

    # bad tasks fail before any loading
    main_samples = load_samples(cfg, "train", scfg.tasks, key="sft.tasks")
    warmup_samples = (
        load_samples(cfg, "train", scfg.warmup.tasks, key="sft.warmup.tasks") if scfg.warmup.enabled else []
    )
    dist = Distributed.setup(cfg.distributed)
    seed_everything(cfg.seed + dist.rank)
    bundle = load_trainable_policy(cfg, "base", dist)
    model = bundle.model
    clips = open_clips(cfg)
    group = scfg.batch_size * dist.world  # one micro-batch of every process
    phases: list[Phase] = []
    rejected: list[dict[str, str]] = []
    reported: set[str] = set()
    if scfg.warmup.enabled:
        train, val, bad = phase_data(
            cfg, bundle, clips, warmup_samples, scfg.warmup.tasks, "sft.warmup.tasks", reported
        )
        phases.append(Phase("warmup", train, val, scfg.warmup.steps, 0))
        rejected += bad
    train, val, bad = phase_data(cfg, bundle, clips, main_samples, scfg.tasks, "sft.tasks", reported)
    per_epoch = math.ceil(len(train) / (group * scfg.grad_accum))
    first = scfg.warmup.steps if scfg.warmup.enabled else 0
    phases.append(Phase("main", train, val, scfg.max_steps or per_epoch * scfg.epochs, first))
    listed = {b["id"] for b in rejected}  # a warm-up family's bad clip is the main phase's too
    rejected += [b for b in bad if b["id"] not in listed]
    total = first + phases[-1].steps
    hint_of = load_hints(cfg, [s for ph in phases for s in ph.train]) if scfg.hint_fraction > 0 else {}

    step = 0
    guard = NonFiniteGuard("sft.optim.max_nonfinite_steps", scfg.optim.max_nonfinite_steps)
    resumed = ckpt.load_run(run_dir, fp, dist)
    if resumed is not None:
        saved_weights, saved_trainer = resumed
        ckpt.restore_weights(model, saved_weights, dist)
        step = int(saved_trainer["step"])
        guard.load_state_dict(saved_trainer.get("nonfinite"))
        log.info("resuming sft from step %d", step)
    saved_step = step
    steplog = StepLog(run_dir / "log.jsonl")
    steplog.truncate_after(step)

    model.train()
    bar = tqdm(total=total, initial=step, desc="sft", disable=not progress or dist.rank > 0)
    for phase in phases:
        if step >= phase.first + phase.steps:
            continue  # finished before the resume
        # each phase has its own optimiser state, schedule and sample order, as a run of its own would
        optimizer, scheduler = build_optimizer(model, scfg.optim, phase.steps)
        rng = np.random.default_rng(cfg.seed)
        order: list[int] = []
        if resumed is not None and step > phase.first:  # the checkpoint was saved inside this phase
            ckpt.restore_trainer(saved_trainer, optimizer, scheduler, rng)
            order = list(saved_trainer["order"])
        train, end = phase.train, phase.first + phase.steps
        while step < end:
            losses = []
            for _ in range(scfg.grad_accum):
                if len(order) < group:
                    order += rng.permutation(len(train)).tolist()
                idx, order = order[:group], order[group:]
                micro = [
                    train[i] for i in idx[dist.rank * scfg.batch_size : (dist.rank + 1) * scfg.batch_size]
                ]
                hinted = [
                    hint_of.get(s.id)
                    if hinted_in_sft(cfg.seed, step - phase.first, s.id, scfg.hint_fraction)
                    else None
                    for s in micro
                ]
                clips.prefetch([train[i] for i in order[: scfg.batch_size]])  # read while this batch trains
                loss = sft_loss(bundle, micro, clips, hinted) / scfg.grad_accum
                loss = poisoned("sft.loss", loss)
                loss.backward()
                losses.append(float(loss.detach()) * scfg.grad_accum)
            dist.average_gradients(model)
            grad_norm = dist.clip_grad_norm_(model, scfg.optim.max_grad_norm)
            losses = dist.gather_floats(losses)  # every process's micro-batches
            loss_value = float(np.mean(losses))
            # every process takes the same decision: the gradient norm is global, the losses gathered
            applied = guard.admit(step + 1, loss_value, grad_norm)
            if applied:
                optimizer.step()
            advance_schedule(scheduler)
            optimizer.zero_grad(set_to_none=True)
            step += 1
            record = {"step": step, "loss": loss_value, "lr": scheduler.get_last_lr()[0]}
            if phase.name != "main":
                record["phase"] = phase.name
            if not applied:
                record["skipped"] = True
            if phase.val and (step % scfg.eval_every == 0 or step == end):
                record["val_loss"] = validation_loss(bundle, phase.val, clips, scfg.batch_size)
            if dist.rank == 0:
                steplog.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            bar.update(1)
            guard.check(step, checkpoint_note(run_dir, saved_step, base_location(cfg)))
            fault_point("sft.step_done")
            # no periodic checkpoint inside a streak of skipped steps: the last one stays the last good one
            if step % scfg.save_every == 0 and step < total and guard.streak == 0:
                trainer = ckpt.trainer_state(
                    fp, optimizer, scheduler, rng, order=order, step=step, nonfinite=guard.state_dict()
                )
                ckpt.save_run(run_dir, model, trainer, dist=dist)
                saved_step = step
    bar.close()
    clips.close()
    full_state = dist.full_state(model, trainable_only=cfg.model.lora.enabled)  # gathered shards (FSDP2)
    if dist.rank != 0:
        dist.barrier()
        return {}

    records = steplog.read()
    finite = [r for r in records if not r.get("skipped")]
    main = [r for r in records if "phase" not in r]
    result = {
        "stage": "sft",
        "fingerprint": fp,
        "steps": step,
        "skipped_steps": guard.skipped,
        "train_samples": len(phases[-1].train),
        "final_loss": finite[-1]["loss"] if finite else None,
        "val_loss": next((r["val_loss"] for r in reversed(main) if r.get("val_loss") is not None), None),
        "rejected_samples": rejected,
    }
    if scfg.warmup.enabled:
        result |= {"warmup_steps": phases[0].steps, "warmup_samples": len(phases[0].train)}
    tmp = ckpt.atomic_dir(out_dir)
    save_stage_policy(cfg, bundle, tmp / "model", "sft", full_state)
    fault_point("output.model_saved")
    write_json(tmp / "done.json", result)
    metrics_dir = Path(cfg.paths.metrics_dir) / "sft"
    write_json(
        metrics_dir / "metrics.json",
        {k: v for k, v in result.items() if k not in ("fingerprint", "rejected_samples")},
    )
    write_atomic(
        metrics_dir / "curve.csv",
        "step,loss,val_loss\n"
        + "".join(f"{r['step']},{_cell(r.get('loss'))},{_cell(r.get('val_loss'))}\n" for r in records),
    )
    fault_point("output.metrics_published")
    ckpt.commit_dir(tmp, out_dir)
    dist.barrier()
    return result


def _cell(value) -> str:
    return "" if value is None else str(value)


def validation_samples(cfg: AvatarConfig, tasks: list[str] | None) -> list[Sample]:
    """The validation split (restricted to `tasks`); empty when the data set has none, since
    validation is optional for SFT (an ingested data set may hold only train and test)."""
    from avatar_core.data.ingest import load_split

    wanted = set(tasks or [])
    return [s for s in load_split(cfg.paths.data_dir, "validation") if not wanted or s.task in wanted]


@torch.no_grad()
def validation_loss(bundle, samples: list[Sample], clips: ClipLoader, batch_size: int) -> float:
    bundle.model.eval()
    losses = []
    for i in range(0, len(samples), batch_size):
        clips.prefetch(samples[i + batch_size : i + 2 * batch_size])
        losses.append(float(sft_loss(bundle, samples[i : i + batch_size], clips)))
    bundle.model.train()
    return float(np.mean(losses))
