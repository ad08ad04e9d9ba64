"""Configuration of the RL stages: generation, objective, TAS, the replay buffer, difficulty tiers,
hints, reward options, one stage, and `rl.defaults` merged under each stage. Part of
`avatar_core.config`."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from avatar_core.config_base import (
    BIG,
    LOSS_TYPES,
    OBJECTIVE_NAMES,
    REWARD_NAMES,
    STAGES,
    OptimConfig,
    Section,
    _known,
)

# --------------------------------------------------------------------------- RL stages


class GenerationConfig(Section):
    max_new_tokens: int = Field(
        2048, gt=0, le=131_072, description="Completion length limit (authors: 2048)."
    )
    temperature: float = Field(1.0, gt=0, le=100, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, le=BIG, description="Top-k sampling (0: off).")


class ObjectiveConfig(Section):
    name: str = Field("avatar", description="Objective from the registry: grpo or avatar.")
    loss_type: str = Field("grpo", description="Aggregation like TRL: grpo, bnpo, dapo or dr_grpo.")
    eps_low: float = Field(0.2, gt=0, lt=1, description="Lower clip range of the ratio.")
    eps_high: float = Field(0.2, gt=0, lt=1, description="Upper clip range of the ratio.")
    beta: float = Field(
        0.1, ge=0, description="k3 KL coefficient to the frozen reference (0: no reference model)."
    )
    alpha: float = Field(1.0, ge=0, description="Weight of the off-policy term J_off.")
    rho_max: float = Field(2.0, gt=1, description="Truncation of the importance ratio of replayed tokens.")
    offpolicy_mode: Literal["separate", "authors"] = Field(
        "separate",
        description="separate: J_on + alpha*J_off with truncated IS; authors: replayed rows get "
        "alpha*(r - Rbar)/(std+1e-4) advantages and the ordinary loss, as in the released code.",
    )
    authors_replay_share: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="offpolicy_mode authors only: share of each update's rows that are replayed "
        "trajectories replacing whole fresh groups, as the released code swaps 4 of every 8 fresh "
        "mini-batches for replayed ones (buffer.replay_per_step is not used in that mode).",
    )
    use_fused_kernel: bool = Field(
        True, description="Use the chunked fused log-prob + loss kernel when the LM head is reachable."
    )

    @field_validator("name")
    @classmethod
    def _objective(cls, v: str) -> str:
        return _known("objective", v, OBJECTIVE_NAMES)

    @field_validator("loss_type")
    @classmethod
    def _loss_type(cls, v: str) -> str:
        return _known("loss type", v, LOSS_TYPES)


class TASConfig(Section):
    enabled: bool = Field(True, description="Weight each token's surrogate by the U-shaped TAS weight.")
    lam: float = Field(0.3, ge=0, description="lambda_TAS: endpoints get weight 1 + lam, the centre 1.")


class TierRatios(Section):
    easy: float = Field(0.25, gt=0, lt=1, description="Share of the capacity for easy prompts.")
    medium: float = Field(0.35, gt=0, lt=1, description="Share for medium prompts.")
    hard: float = Field(0.40, gt=0, lt=1, description="Share for hard prompts.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> TierRatios:
        total = self.easy + self.medium + self.hard
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"tier ratios must sum to 1, got easy+medium+hard = {total:.6g}")
        return self


class TierQuantiles(Section):
    hard: float = Field(
        0.40, gt=0, lt=1, description="Rbar <= this quantile of Rbar over seen prompts -> Hard."
    )
    medium: float = Field(0.75, gt=0, lt=1, description="Rbar <= this quantile -> Medium; above -> Easy.")

    @model_validator(mode="after")
    def _ordered(self) -> TierQuantiles:
        if self.hard >= self.medium:
            raise ValueError(f"hard quantile ({self.hard}) must be below the medium quantile ({self.medium})")
        return self


class BufferConfig(Section):
    enabled: bool = Field(True, description="Keep and replay trajectories (off: pure on-policy GRPO).")
    capacity: int = Field(
        10_000, gt=0, le=100_000_000, description="Total trajectories held across the three tiers."
    )
    tiers: TierRatios = Field(
        default_factory=TierRatios, description="Fixed tier capacities as shares of `capacity`."
    )
    quantiles: TierQuantiles = Field(
        default_factory=TierQuantiles, description="Dynamic Rbar quantiles that assign tiers."
    )
    sampling: Literal["priority", "fifo"] = Field("priority", description="Within-tier sampling rule.")
    priority_temperature: float = Field(1.0, gt=0, description="T in exp((score - min score) / T).")
    kl_penalty: float = Field(0.1, ge=0, description="score = mean advantage - kl_penalty * KL.")
    replay_per_step: int = Field(
        8, ge=0, le=65_536, description="Replayed trajectories mixed into each update."
    )
    augment_collapsed: bool = Field(
        True, description="Fill zero-variance fresh groups with same-prompt replays of other rewards."
    )
    max_augment: int = Field(
        4, ge=0, le=65_536, description="At most this many replayed trajectories join one collapsed group."
    )
    min_size: int = Field(
        16, ge=0, le=100_000_000, description="No replay until the buffer holds this many trajectories."
    )


class DifficultyConfig(Section):
    mode: Literal["window", "ema"] = Field(
        "window", description="Rbar as the mean of the last `window` rewards, or an EMA."
    )
    window: int = Field(20, gt=0, le=1_000_000, description="Rewards kept per prompt for the window mean.")
    ema_decay: float = Field(0.9, gt=0, lt=1, description="EMA decay when mode is ema.")


class HintTriggerConfig(Section):
    enabled: bool = Field(True, description="Inject pre-computed hints for prompts that keep failing.")
    zero_streak: int = Field(
        3, gt=0, le=1_000_000, description="Hint after this many consecutive zero-reward groups."
    )
    streak_reward: Literal["accuracy", "total"] = Field(
        "accuracy",
        description="Which reward a zero-reward group is judged on: accuracy (no completion of the group "
        "answered correctly; sees stuck prompts while the format reward keeps the total above 0) or total "
        "(the weighted sum, as the authors' code; it never fires while any completion is well formed).",
    )
    use_kl_trigger: bool = Field(
        True, description="Also hint when Rbar <= tau_reward and KL <= tau_kl (paper)."
    )
    tau_reward: float = Field(0.2, ge=0, le=1, description="Rbar threshold of the KL trigger.")
    tau_kl: float = Field(
        0.01, ge=0, description="KL threshold below which the policy is deemed to have stopped exploring."
    )


class RewardOptions(Section):
    numeric_mode: Literal["dense", "binary"] = Field(
        "dense", description="dense: 1 - rMAE; binary: rel. error < tol (authors)."
    )
    numeric_tol: float = Field(1e-3, gt=0, description="Relative tolerance of the binary numeric reward.")
    judge: Literal["rule", "model"] = Field(
        "rule", description="rule: verifiable facts of synthetic samples; model: a VLM judge."
    )
    judge_model: str = Field(
        "OpenGVLab/InternVL3-2B",
        description="VLM judge when judge is model: a local folder or hub name run in this process, or "
        "the model name sent to judge_url. The native layout (e.g. OpenGVLab/InternVL3-2B-hf) needs no "
        "remote code; the original release needs judge_trust_remote_code.",
    )
    judge_frames: int = Field(8, gt=0, le=64, description="Frames shown to the VLM judge (paper: 8).")
    judge_url: str = Field(
        "",
        description="Base URL of an OpenAI-compatible endpoint serving the judge (e.g. "
        "http://gpu-host:8000/v1); '' runs judge_model in this process.",
    )
    judge_api_key_env: str = Field(
        "AVATAR_JUDGE_API_KEY",
        description="Name of the environment variable holding the served judge's bearer token (read only "
        "when set; the token itself never belongs in params.yaml).",
    )
    judge_timeout_s: float = Field(60.0, gt=0, description="Timeout of one request to the served judge.")
    judge_retries: int = Field(
        3, ge=0, le=20, description="Retries of a failed judge request before the step fails with an error."
    )
    judge_retry_backoff_s: float = Field(
        1.0, ge=0, description="First wait between judge retries; doubles each retry (at most 30 s)."
    )
    judge_batch_size: int = Field(
        8,
        gt=0,
        le=4096,
        description="Completions per in-process judge batch, or concurrent requests to judge_url.",
    )
    judge_max_new_tokens: int = Field(64, gt=0, le=32_768, description="Length budget of the judge's answer.")
    judge_max_pixels: int = Field(
        448 * 448,
        ge=28 * 28,
        description="Pixel budget of each frame sent to a served judge (InternVL3 tiles are 448x448); an "
        "in-process judge uses its own processor's tile size.",
    )
    judge_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Parameter dtype of an in-process judge."
    )
    judge_trust_remote_code: bool = Field(
        False,
        description="Allow a judge checkpoint that runs code from its repository (InternVL's original release).",
    )
    judge_cache: bool = Field(
        True,
        description="Cache model-judge scores by (prompt id, completion hash) in the stage's run folder, so "
        "replays and reruns do not pay twice.",
    )

    @field_validator("judge_url")
    @classmethod
    def _judge_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"must be '' or an http(s):// URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("judge_api_key_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return v

    @model_validator(mode="after")
    def _url_needs_model_judge(self) -> RewardOptions:
        if self.judge_url and self.judge != "model":
            raise ValueError(
                f"judge_url is set ({self.judge_url}) but judge is {self.judge!r}; set judge: model"
            )
        return self


class RLStageConfig(Section):
    tasks: list[str] = Field(
        default_factory=list, description="Task families (or data set task types) this stage trains on."
    )
    steps: int = Field(100, gt=0, le=BIG, description="Optimiser steps in this stage.")
    max_prompts: int | None = Field(
        None,
        gt=0,
        le=BIG,
        description="Train on at most this many prompts of the stage's tasks, the same number from each "
        "task (the first by id); None: all. A smaller pool brings prompts back, so a prompt that keeps "
        "failing builds the zero-reward streak the hint trigger watches.",
    )
    prompts_per_step: int = Field(4, gt=0, le=65_536, description="Fresh prompts sampled per step.")
    group_size: int = Field(8, ge=2, le=1024, description="G: completions per prompt.")
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"format": 0.5, "accuracy": 0.5}, description="Reward name -> weight."
    )
    reward_options: RewardOptions = Field(default_factory=RewardOptions, description="Reward settings.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Rollout sampling.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimiser and schedule.")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig, description="Policy objective.")
    tas: TASConfig = Field(default_factory=TASConfig, description="Temporal Advantage Shaping.")
    buffer: BufferConfig = Field(default_factory=BufferConfig, description="Hierarchical replay buffer.")
    difficulty: DifficultyConfig = Field(
        default_factory=DifficultyConfig, description="Per-prompt Rbar tracker."
    )
    hints: HintTriggerConfig = Field(default_factory=HintTriggerConfig, description="Hint trigger.")
    save_every: int = Field(
        10, gt=0, le=BIG, description="Checkpoint (model, optimiser, buffer, counters) every N steps."
    )
    log_every: int = Field(1, gt=0, le=BIG, description="Write a metrics line every N steps.")

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one reward is needed")
        for name, weight in v.items():
            _known("reward", name, REWARD_NAMES)
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of reward {name!r} must be a finite number >= 0, got {weight}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RLStageConfig:
        if self.hints.enabled and self.hints.streak_reward == "accuracy" and "accuracy" not in self.rewards:
            raise ValueError(
                "hints.streak_reward is accuracy but the stage has no accuracy reward: add rewards.accuracy "
                "or set hints.streak_reward: total"
            )
        if self.objective.name == "grpo" and self.objective.alpha > 0 and self.buffer.enabled:
            raise ValueError(
                "objective grpo has no off-policy term: set buffer.enabled false or objective avatar"
            )
        return self


class RLConfig(Section):
    defaults: RLStageConfig = Field(
        default_factory=RLStageConfig,
        description="Values every RL stage starts from. A stage section (s1, s2, s3) lists only the keys "
        "it changes; they are merged into these key by key (`tasks` and `rewards` are replaced whole).",
    )
    s1: RLStageConfig = Field(default_factory=RLStageConfig, description="S1: visual reasoning RL.")
    s2: RLStageConfig = Field(default_factory=RLStageConfig, description="S2: audio-visual reasoning RL.")
    s3: RLStageConfig = Field(default_factory=RLStageConfig, description="S3: sound-source localisation RL.")

    def stage(self, name: str) -> RLStageConfig:
        _known("RL stage", name, STAGES)
        return getattr(self, name)


def _section_type(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    """The pydantic model of field `key` when that field is a nested section, else None."""
    field = model.model_fields.get(key)
    kind = field.annotation if field is not None else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def merge_sections(base: dict[str, Any], changes: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`base` with `changes` applied key by key: nested sections merge, any other value replaces."""
    out = dict(base)
    for key, value in changes.items():
        section = _section_type(model, key)
        if section is not None and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_sections(out[key], value, section)
        else:
            out[key] = value
    return out


def dotted_to_nested(changes: dict[str, Any]) -> dict[str, Any]:
    """{"objective.name": "grpo", "tas": {"enabled": False}} -> nested dicts (dots split keys)."""
    nested: dict[str, Any] = {}
    for key, value in changes.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"key {key!r}: {part!r} is both a value and a section")
        leaf = value if not isinstance(value, dict) else dotted_to_nested(value)
        if isinstance(node.get(parts[-1]), dict) and isinstance(leaf, dict):
            node[parts[-1]] = {**node[parts[-1]], **leaf}
        else:
            node[parts[-1]] = leaf
    return nested


def expand_rl_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Raw params with every RL stage section merged onto `rl.defaults` (a no-op without defaults)."""
    rl = data.get("rl")
    if not isinstance(rl, dict) or not isinstance(rl.get("defaults"), dict):
        return data
    out = dict(data)
    out["rl"] = dict(rl)
    for stage in STAGES:
        changes = rl.get(stage) or {}
        if isinstance(changes, dict):
            out["rl"][stage] = merge_sections(rl["defaults"], changes, RLStageConfig)
    return out
