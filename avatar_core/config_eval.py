"""Configuration of evaluation (held-out splits, controls, benchmarks, the judge check) and of the
ablation study (settings and variant presets over an RL stage). Part of `avatar_core.config`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from avatar_core.config_base import (
    BIG,
    CHECKPOINTS,
    CONTROL_NAMES,
    MAX_SEED,
    SPLITS,
    STAGES,
    Section,
    _known,
    _known_unique,
)

# --------------------------------------------------------------------------- evaluation, remote


class BenchmarkSpec(Section):
    name: str = Field(
        description="Adapter name: omnibench, dailyomni, avcounting, worldsense, mmvu, videoholmes, avodyssey, intentbench."
    )
    root: str = Field(
        description="Local folder holding the benchmark as downloaded (any layout its adapter reads); "
        "a missing folder is reported by the evaluation, not fatal."
    )
    limit: int | None = Field(None, gt=0, le=BIG, description="Evaluate at most this many records.")

    @field_validator("name")
    @classmethod
    def _adapter_exists(cls, v: str) -> str:
        from avatar_core.data.benchmarks import BENCHMARKS  # the adapters' registry is the truth

        return _known("benchmark", v, tuple(BENCHMARKS.names()))


class EvaluateConfig(Section):
    splits: list[str] = Field(
        default_factory=lambda: ["test"],
        description="Synthetic/ingested splits to evaluate (train, validation, test).",
    )
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=list, description="External benchmarks read by adapters."
    )
    checkpoints: list[str] = Field(
        default_factory=lambda: ["base", "sft", "s1", "s2", "s3"],
        description="Stages whose checkpoints are compared (base, sft, s1, s2, s3).",
    )
    max_new_tokens: int = Field(64, gt=0, le=131_072, description="Greedy answer length limit.")
    batch_size: int = Field(8, gt=0, le=65_536, description="Prompts per generation batch.")
    bootstrap_samples: int = Field(
        1000, gt=0, le=10_000_000, description="Bootstrap resamples for confidence intervals."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    controls: list[str] = Field(
        default_factory=lambda: ["blank_media", "blank_video", "blank_audio"],
        description="Controls evaluated beside the real media: blank_media (black frames and silence), "
        "blank_video (black frames, audio kept), blank_audio (silence, video kept). A family that needs "
        "a modality must fall to its blank level when that modality is blanked.",
    )
    control_checkpoints: list[str] | None = Field(
        None, description="Checkpoints the controls run for (None: every checkpoint in `checkpoints`)."
    )
    judge_check: bool = Field(
        True,
        description="When judge_check_stage rewards with a model judge, check that judge: its scores of "
        "matching reasoning shown the frames vs blank frames (a judge that scores both the same is not looking).",
    )
    judge_check_stage: Literal["s1", "s2", "s3"] = Field(
        "s3", description="RL stage whose reward_options name the judge to check."
    )
    judge_check_samples: int = Field(
        32, gt=0, description="Held-out samples (with a clip and a reference trace) the judge check scores."
    )

    @field_validator("controls")
    @classmethod
    def _controls(cls, v: list[str]) -> list[str]:
        for name in v:
            _known("control", name, CONTROL_NAMES)
        if len(set(v)) != len(v):
            raise ValueError(f"controls must not repeat, got {v}")
        return v

    @model_validator(mode="after")
    def _control_checkpoints(self) -> EvaluateConfig:
        unknown = [c for c in self.control_checkpoints or [] if c not in self.checkpoints]
        if unknown:
            raise ValueError(f"control_checkpoints {unknown} are not in checkpoints {self.checkpoints}")
        return self

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: list[str]) -> list[str]:
        return _known_unique("split", v, SPLITS)

    @field_validator("checkpoints")
    @classmethod
    def _checkpoints(cls, v: list[str]) -> list[str]:
        return _known_unique("checkpoint", v, CHECKPOINTS)

    @model_validator(mode="after")
    def _one_folder_per_benchmark(self) -> EvaluateConfig:
        names = [b.name for b in self.benchmarks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"evaluate.benchmarks lists {', '.join(twice)} more than once; give each benchmark one folder"
            )
        return self


class AblationSetting(Section):
    variants: list[str] = Field(
        default_factory=lambda: ["grpo", "avatar"], description="Variants run in this setting."
    )
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted keys of the RL stage config every variant of this setting changes (the reward "
        "and data regime), e.g. {rewards: {accuracy: 1.0}, reward_options.numeric_mode: binary}.",
    )


class AblationConfig(Section):
    stage: str = Field(
        "s1", description="RL stage whose config (rl.defaults + rl.<stage>) and task data every cell uses."
    )
    start: str = Field(
        "sft",
        description="Checkpoint every cell starts from (the same for all cells): base or sft. An RL "
        "stage's checkpoint is not supported: a cell keeps its RL checkpoints in its own folder.",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        description="Seeds of the reported cells (each 0..2**32-1, as `seed`); choose settings on other "
        "seeds, then leave those out.",
    )
    steps: int | None = Field(
        None, gt=0, le=BIG, description="Optimiser steps per cell (None: the stage's steps)."
    )
    eval_every: int = Field(
        320,
        gt=0,
        le=BIG,
        description="Held-out evaluation every this many generated completions (the x axis).",
    )
    eval_split: str = Field("test", description="Split of the stage's task families the cells are scored on.")
    eval_max_new_tokens: int = Field(
        64, gt=0, le=131_072, description="Greedy answer length limit of the evaluations."
    )
    eval_batch_size: int = Field(16, gt=0, le=65_536, description="Prompts per evaluation generation batch.")
    settings: dict[str, AblationSetting] = Field(
        default_factory=lambda: {"default": AblationSetting()},
        description="Named regimes: the variants each runs and the changes (reward and data settings) they share.",
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"grpo": {}, "avatar": {}},
        description="Named method presets: dotted keys of the RL stage config each variant changes on top of "
        "its setting (e.g. grpo: {objective.name: grpo, tas.enabled: false, buffer.enabled: false}).",
    )
    baseline: str = Field("grpo", description="Variant every other one is compared with (paired per seed).")
    workers: int = Field(
        2, gt=0, le=1024, description="Cells the Prefect ablation flow runs at a time on one machine."
    )
    bootstrap_samples: int = Field(
        2000, gt=0, le=10_000_000, description="Bootstrap resamples of seeds for every interval."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")

    @model_validator(mode="after")
    def _names(self) -> AblationConfig:
        for key, kind, name, valid in (
            ("stage", "RL stage", self.stage, STAGES),
            ("start", "start checkpoint", self.start, CHECKPOINTS),
            ("eval_split", "split", self.eval_split, SPLITS),
        ):
            if name not in valid:
                raise ValueError(f"ablation.{key}: unknown {kind} {name!r}; valid names: {', '.join(valid)}")
        if self.start in STAGES:
            raise ValueError(
                f"ablation.start: {self.start!r} is not supported; a cell keeps its RL checkpoints in a "
                "folder of its own and starts from base or sft"
            )
        if self.baseline not in self.variants:
            raise ValueError(f"baseline {self.baseline!r} is not one of the variants {sorted(self.variants)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be a non-empty list without repeats, got {self.seeds}")
        out_of_range = [s for s in self.seeds if not 0 <= s <= MAX_SEED]
        if out_of_range:
            raise ValueError(f"ablation.seeds: {out_of_range} outside 0..{MAX_SEED}")
        for name, setting in self.settings.items():
            unknown = [v for v in setting.variants if v not in self.variants]
            if unknown:
                raise ValueError(f"setting {name!r} runs variants {unknown} that are not in variants")
        for name in [*self.settings, *self.variants]:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"setting and variant names become folder names; {name!r} cannot")
        return self
