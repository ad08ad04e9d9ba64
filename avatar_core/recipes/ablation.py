"""`avatar ablate`: one cell of the AVATAR vs GRPO study (a setting, a variant, a seed).

A cell runs the RL stage `ablation.stage` (its config from rl.defaults + rl.<stage>) from the
`ablation.start` checkpoint, with the setting's changes (the reward and data regime) and then the
variant's (the method) applied on top, under the cell's seed. Every `ablation.eval_every`
generated completions, and at step 0 and the last step, the policy answers the held-out split of
the stage's task families greedily; the accuracy at those budgets is the study's x axis (the
paper's sample-efficiency plot). The cell writes into `results/ablation/cells/<setting>/<variant>/
seed-<n>/` (`paths.ablation_dir`): `config.json` (the effective stage config), `curve.jsonl` (one line per budget),
`log.jsonl` (the RL step log: collapse fractions, replay ratios, hint rate) and `done.json`.
Its resumable state and checkpoints live under `runs/ablation/...` (not a DVC output); a killed
cell resumes where its last checkpoint left it, and a finished one is not run again unless its
config, its start checkpoint's content or its scoring settings changed (then it starts afresh).

`avatar ablate --summary` (recipes/ablation_report.py) reads every cell and writes the tables
and figures.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from avatar_core.config import AvatarConfig, RLStageConfig, dotted_to_nested, merge_sections
from avatar_core.data.schema import Sample
from avatar_core.evaluation.scoring import greedy_answers, score_answers, summarise
from avatar_core.recipes.common import load_samples, open_clips, write_json
from avatar_core.recipes.policy import stage_identity

log = logging.getLogger(__name__)


def cell_name(setting: str, variant: str, seed: int) -> str:
    return f"{setting}/{variant}/seed-{seed}"


def cell_stage_config(cfg: AvatarConfig, setting: str, variant: str) -> RLStageConfig:
    """The RL stage config of a cell: the stage's, then the setting's changes, then the variant's."""
    ab = cfg.ablation
    if setting not in ab.settings:
        raise ValueError(f"unknown ablation setting {setting!r}; valid names: {', '.join(ab.settings)}")
    if variant not in ab.variants:
        raise ValueError(f"unknown ablation variant {variant!r}; valid names: {', '.join(ab.variants)}")
    raw = cfg.rl.stage(ab.stage).model_dump(mode="json")
    if variant not in ab.settings[setting].variants:
        raise ValueError(
            f"setting {setting!r} does not run variant {variant!r} (ablation.settings.{setting}.variants)"
        )
    raw = merge_sections(raw, dotted_to_nested(ab.settings[setting].changes), RLStageConfig)
    raw = merge_sections(raw, dotted_to_nested(ab.variants[variant]), RLStageConfig)
    if ab.steps is not None:
        raw["steps"] = ab.steps
    return RLStageConfig.model_validate(raw)


class BudgetEvaluator:
    """`run_rl` hook: held-out accuracy at step 0, every `every` completions and at the last step."""

    def __init__(
        self, cfg: AvatarConfig, samples: list[Sample], every: int, total_steps: int, path: Path
    ) -> None:
        self.cfg, self.samples, self.every, self.total_steps, self.path = (
            cfg,
            samples,
            every,
            total_steps,
            path,
        )
        self.clips = open_clips(cfg)  # the held-out clips, read from the media store
        self.records: list[dict[str, Any]] = []

    def start(self, step: int, bundle) -> None:
        if self.path.is_file():
            lines = self.path.read_text().splitlines()
            self.records = [r for r in (json.loads(x) for x in lines if x.strip()) if r["step"] <= step]
        self._write()
        if step == 0 and not self.records:
            self._evaluate(0, 0, bundle)

    def _evaluate(self, step: int, completions: int, bundle) -> None:
        ab = self.cfg.ablation
        texts = greedy_answers(
            bundle, self.samples, self.clips, ab.eval_max_new_tokens, ab.eval_batch_size, progress=False
        )
        summary = summarise(score_answers(texts, self.samples), self.samples, 200, ab.confidence)
        per_task = {t: v["accuracy"] for t, v in summary["per_task"].items()}
        self.records.append(
            {"step": step, "completions": completions, "accuracy": summary["accuracy"], "per_task": per_task}
        )
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def after_step(self, step: int, completions: int, bundle) -> None:
        last = max((r["completions"] for r in self.records), default=0)
        if completions // self.every > last // self.every or step == self.total_steps:
            if not any(r["step"] == step for r in self.records):
                self._evaluate(step, completions, bundle)


def run_cell(cfg: AvatarConfig, setting: str, variant: str, seed: int, progress: bool = True) -> dict:
    """Run one cell (or find it finished) and return its done.json."""
    from avatar_core.recipes.rl import run_rl

    ab = cfg.ablation
    scfg = cell_stage_config(cfg, setting, variant)
    name = cell_name(setting, variant, seed)
    out = Path(cfg.paths.ablation_dir) / "cells" / name
    runs = Path(cfg.paths.runs_dir) / "ablation" / name
    run_cfg = cfg.model_copy(deep=True)
    run_cfg.seed = seed
    setattr(run_cfg.rl, ab.stage, scfg)
    run_cfg.paths.rl_dir = str(runs / "checkpoints")
    run_cfg.paths.runs_dir = str(runs / "state")
    run_cfg.paths.metrics_dir = str(runs / "metrics")
    effective = {"setting": setting, "variant": variant, "seed": seed, "stage": ab.stage, "start": ab.start}
    effective["rl_stage_config"] = scfg.model_dump(mode="json")
    # a finished cell is reused only if nothing it depends on changed: its start checkpoint (by
    # content) and how it is scored, as well as its training config
    effective["start_identity"] = stage_identity(cfg, ab.start)
    effective["evaluation"] = {
        key: getattr(ab, key)
        for key in ("eval_every", "eval_split", "eval_max_new_tokens", "eval_batch_size")
    }
    done_path = out / "done.json"
    if done_path.is_file():
        done = json.loads(done_path.read_text())
        if done.get("config") == effective:
            log.info("ablation cell %s is up to date", name)
            return done
    started = out / "config.json"
    if started.is_file() and json.loads(started.read_text()) != effective:
        # a cell begun (or finished) under another config: its checkpoints and curve are not this
        # cell's, so it starts again (a killed cell with the same config resumes instead)
        log.info("ablation cell %s: its config changed; starting it again", name)
        shutil.rmtree(out)
        shutil.rmtree(runs, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", effective)
    samples = load_samples(cfg, ab.eval_split, scfg.tasks)
    hook = BudgetEvaluator(run_cfg, samples, ab.eval_every, scfg.steps, out / "curve.jsonl")
    try:
        result = run_rl(
            run_cfg,
            ab.stage,
            progress=progress,
            init_stage=ab.start,
            hook=hook,
            start_identity=effective["start_identity"],  # the same model and start folder as run_cfg's
        )
    finally:
        hook.clips.close()
    shutil.copyfile(runs / "state" / ab.stage / "log.jsonl", out / "log.jsonl")
    curve = [json.loads(x) for x in (out / "curve.jsonl").read_text().splitlines() if x.strip()]
    done = {
        "config": effective,
        "final_accuracy": curve[-1]["accuracy"],
        "completions": result.get("completions"),
        "hints": result.get("hints"),
    }
    write_json(done_path, done)
    log.info("ablation cell %s: final accuracy %.3f", name, done["final_accuracy"])
    return done


def run_ablate(
    cfg: AvatarConfig,
    setting: str | None = None,
    variant: str | None = None,
    seed: int | None = None,
    summary: bool = False,
    progress: bool = True,
) -> dict:
    """The `avatar ablate` entry point: one cell, or the summary of every cell. Any seed runs (e.g.
    seeds for choosing settings); the summary reads only the cells of `ablation.seeds`."""
    if summary:
        from avatar_core.recipes.ablation_report import run_summary

        return run_summary(cfg, {name: list(s.variants) for name, s in cfg.ablation.settings.items()})
    return run_cell(cfg, str(setting), str(variant), int(seed), progress=progress)
