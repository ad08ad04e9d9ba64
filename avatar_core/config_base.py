"""Shared pieces of the typed configuration: name registries, bounds, the `Section` base every
section derives from, `ConfigError`, and the optimiser settings SFT and RL share."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

OBJECTIVE_NAMES = ("grpo", "avatar")
LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")
REWARD_NAMES = ("format", "accuracy", "self", "judge")
STAGES = ("s1", "s2", "s3")
CONTROL_NAMES = ("blank_media", "blank_video", "blank_audio")
CHECKPOINTS = ("base", "sft", *STAGES)  # every stage that writes a model, in curriculum order
SPLITS = ("train", "validation", "test")
MAX_SEED = 2**32 - 1  # numpy's legacy np.random.seed takes 0..2**32-1; torch and numpy Generators take more
BIG = 10**9  # upper bound of counts (steps, samples) that no run reaches; catches typos such as 1e20


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the key path of each problem.

    `problems` holds the same content as (where, reason) pairs, `where` a dotted key path or
    `file:line` ('' when the problem has no location): the `avatar` command prints one line each.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [("", message)]


class Section(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in any float field is an error naming its key, not a
    # run that trains every weight to NaN.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        """A NUL byte in a path or name makes every OS call on it fail; refuse it here instead."""
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain a NUL byte (\\x00)")
        return value


def _known(kind: str, name: str, valid: tuple[str, ...]) -> str:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(valid)}")
    return name


def _known_unique(kind: str, names: list[str], valid: tuple[str, ...]) -> list[str]:
    for name in names:
        _known(kind, name, valid)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{kind} {', '.join(repeated)} listed more than once")
    return names


class OptimConfig(Section):
    lr: float = Field(
        5e-7,
        gt=0,
        le=1,
        description="Peak learning rate (authors: 5e-7 for 7B models; above 1 AdamW diverges).",
    )
    tower_lr_scale: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Learning rate of the vision and audio encoders (with their projectors) as a share of "
        "lr; 0 freezes them. `vision_lr_scale` and `audio_lr_scale` set one encoder apart. The tiny model's "
        "audio encoder must train (beep counts stay at chance at 0.1); trained at the full rate, its vision "
        "encoder loses where things are (docs/embedded-default.md), so the embedded default keeps 1.0 for "
        "both and the choice is measured there.",
    )
    vision_lr_scale: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Learning rate of the vision encoder and its merger as a share of lr; null takes "
        "tower_lr_scale, 0 freezes it (the common choice for a pretrained vision encoder).",
    )
    audio_lr_scale: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Learning rate of the audio encoder and its projection as a share of lr; null takes "
        "tower_lr_scale, 0 freezes it.",
    )

    weight_decay: float = Field(0.0, ge=0, le=1, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    warmup_steps: int = Field(0, ge=0, le=BIG, description="Linear warm-up steps.")
    schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="Schedule after warm-up."
    )
    max_nonfinite_steps: int = Field(
        3,
        ge=1,
        le=1000,
        description="A step whose loss or gradient norm is NaN or infinite is skipped (no update) and "
        "logged; this many in a row stop the stage with an error, its last checkpoint intact.",
    )
