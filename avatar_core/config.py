"""The one typed configuration: pydantic models for every section of params.yaml.

params.yaml holds the values; this module holds what each value means (every field has a
description), its bounds, and the cross-field checks. `load_config(path, overrides)` returns an
`AvatarConfig`; any problem is reported as one `ConfigError` whose lines name the dotted key path,
e.g. `rl.s2.buffer.tiers.hard: ...`.

Defaults follow the paper and the authors' released code where they state a value (lambda_TAS 0.3,
alpha 1.0, beta 0.1, eps 0.2, G 8, window 20, buffer 10,000 in 25/35/40 tiers); params.yaml
overrides them with the miniature values of the embedded default.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


# --------------------------------------------------------------------------- paths, data, model


class PathsConfig(Section):
    data_dir: str = Field(
        "data/synthetic", description="Folder of the ingested data set (Arrow splits + media)."
    )
    hints_dir: str = Field(
        "data/hints", description="Folder of the hint cache (one JSON line per prompt id)."
    )
    model_dir: str = Field("checkpoints/base", description="Folder the base model is built or copied into.")
    sft_dir: str = Field("checkpoints/sft", description="Folder of the cold-start SFT checkpoint.")
    rl_dir: str = Field(
        "checkpoints/rl", description="Parent folder of the RL stage checkpoints (one subfolder per stage)."
    )
    eval_dir: str = Field("results/eval", description="Folder of evaluation results (JSON, Markdown, PNG).")
    metrics_dir: str = Field(
        "results/metrics", description="Folder of DVC metrics and plots files per stage."
    )
    ablation_dir: str = Field(
        "results/ablation",
        description="Folder of the ablation study: one subfolder per cell, then the summary.",
    )
    runs_dir: str = Field(
        "runs",
        description="Resumable training state per stage (not a DVC output, so a crash never loses it).",
    )


class SyntheticConfig(Section):
    n_train: int = Field(
        240, gt=0, le=BIG, description="Training samples to generate (spread over the task families)."
    )
    n_val: int = Field(48, ge=0, le=BIG, description="Validation samples.")
    n_test: int = Field(96, gt=0, le=BIG, description="Held-out test samples.")
    tasks: list[str] = Field(
        default_factory=lambda: ["count_flashes", "av_match", "count_beeps", "localise"],
        description="Task families to generate; each belongs to one curriculum stage.",
    )
    frame_size: int = Field(
        56, ge=28, le=448, description="Width and height of the generated video in pixels (multiple of 28)."
    )
    fps: int = Field(8, gt=0, le=60, description="Frame rate of the generated video.")
    duration_s: float = Field(2.0, gt=0, le=30, description="Clip length in seconds.")
    sample_rate: int = Field(
        16000, ge=1000, le=192_000, description="Audio sample rate written into the clips."
    )
    hard_fraction: float = Field(
        0.4, ge=0, le=1, description="Share of samples drawn from the hard difficulty level."
    )

    @field_validator("frame_size")
    @classmethod
    def _multiple_of_28(cls, v: int) -> int:
        if v % 28:
            raise ValueError(f"must be a multiple of 28 (the Qwen2-VL patch x merge size), got {v}")
        return v

    @field_validator("tasks")
    @classmethod
    def _generator_tasks(cls, v: list[str]) -> list[str]:
        from avatar_core.data.synthetic_tasks import TASKS  # numpy only; the registry is the truth

        if not v:
            raise ValueError("at least one task family is needed")
        return _known_unique("synthetic task", v, tuple(TASKS.names()))


class MediaConfig(Section):
    n_frames: int = Field(4, gt=0, le=256, description="Frames sampled uniformly from each clip (paper: 16).")
    max_pixels: int = Field(
        56 * 56,
        ge=28 * 28,
        le=2**26,
        description="Pixel budget per frame (at least one 28x28 patch); frames are resized to fit, "
        "multiple of 28.",
    )
    sample_rate: int = Field(
        16000, ge=1000, le=192_000, description="Audio is decoded to mono float32 at this rate."
    )
    backend: Literal["decord", "pyav"] = Field("decord", description="Video decoder; pyav is the fallback.")
    allow_missing_audio: bool = Field(
        True, description="A clip without audio gets silence and a flag instead of an error."
    )
    max_duration_s: float = Field(600.0, gt=0, le=86_400, description="Clips longer than this are rejected.")
    max_resolution: int = Field(
        8192, gt=0, le=65_536, description="Clips wider or taller than this are rejected as absurd."
    )
    audio_dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="Dtype of the audio in the media store: float32 keeps the decoded samples exactly, "
        "float16 halves their bytes (readers get float32 back, rounded to float16 precision).",
    )


class LoaderConfig(Section):
    """How SFT, RL and evaluation read clips from the media store; none of it changes results, so
    no stage lists these keys as DVC params."""

    cache_mb: float = Field(
        512.0,
        ge=0,
        le=1_048_576,
        description="RAM cache of clips read from the store, per process, in MiB (least recently used "
        "clips are dropped first; 0: keep none beyond the batches being loaded).",
    )
    threads: int = Field(
        1,
        ge=0,
        le=64,
        description="Background threads that load the next batch's clips while the current batch "
        "trains or generates (0: load in the training thread when needed).",
    )
    verify: bool = Field(
        True,
        description="Check each store entry's CRC-32 when it is read (a corrupt entry names its sample).",
    )


class DataConfig(Section):
    source: Literal["synthetic", "jsonl", "hf_dataset"] = Field(
        "synthetic", description="synthetic: run the built-in generator; jsonl/hf_dataset: ingest `path`."
    )
    path: str | None = Field(
        None, description="Annotation file or data set folder for source jsonl/hf_dataset."
    )
    media_root: str | None = Field(
        None, description="Folder media paths resolve in; paths escaping it are rejected."
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig, description="Generator settings.")
    media: MediaConfig = Field(
        default_factory=MediaConfig, description="Decoding settings shared by all stages."
    )
    num_workers: int = Field(
        2, ge=0, le=256, description="Decoding worker processes of ingest (0 or 1: in the main process)."
    )
    max_question_chars: int = Field(
        4000,
        gt=0,
        le=1_000_000,
        description="Ingested records whose question (or any option text) is longer are rejected.",
    )
    loader: LoaderConfig = Field(
        default_factory=LoaderConfig, description="Reading clips from the media store while training."
    )

    @model_validator(mode="after")
    def _path_for_files(self) -> DataConfig:
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"data.path: required when data.source is {self.source!r}")
        return self


class TinyModelConfig(Section):
    hidden_size: int = Field(64, gt=0, le=8192, description="Text hidden size of the tiny thinker.")
    num_layers: int = Field(2, gt=0, le=256, description="Text decoder layers.")
    num_heads: int = Field(4, gt=0, le=256, description="Attention heads.")
    num_kv_heads: int = Field(2, gt=0, le=256, description="Key/value heads (grouped-query attention).")
    vision_dim: int = Field(32, gt=0, le=8192, description="Vision encoder width.")
    vision_depth: int = Field(2, gt=0, le=256, description="Vision encoder blocks.")
    audio_dim: int = Field(32, gt=0, le=8192, description="Audio encoder width.")
    audio_layers: int = Field(2, gt=0, le=256, description="Audio encoder layers.")
    vocab_size: int = Field(
        1024, ge=300, le=1_000_000, description="BPE vocabulary trained on the synthetic corpus."
    )
    rope_theta: float = Field(
        1e6,
        gt=1,
        le=1e7,
        description="Base of the rotary frequencies (Qwen: 1e6, sized for 32k-token contexts). A prompt of "
        "the tiny model is ~200 tokens; 1e4 gives it more than two rotary pairs that turn over that span.",
    )
    temporal_patch_size: int = Field(
        2,
        ge=1,
        le=2,
        description="Sampled frames per video token (Qwen uses 2). 1 gives every sampled frame its own "
        "tokens: with 2 and few frames, two flashes in one frame pair read as one bright token.",
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelConfig:
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("hidden_size must be divisible by num_heads, and num_heads by num_kv_heads")
        return self


class LoraConfig(Section):
    enabled: bool = Field(False, description="Train LoRA adapters (PEFT) instead of all weights.")
    r: int = Field(8, gt=0, le=4096, description="LoRA rank (authors: 8).")
    alpha: int = Field(32, gt=0, le=100_000, description="LoRA alpha (authors: 32).")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules to adapt; 'all-linear' as in the authors' code."
    )
    merged_export: bool = Field(
        False,
        description="Also write each stage's policy with its adapters merged (<stage>/model/merged), "
        "a plain checkpoint for tools that do not read adapters.",
    )


class ModelConfig(Section):
    name_or_path: str = Field(
        "tiny", description="'tiny' builds the embedded default; else a hub name or local folder."
    )
    kind: Literal["auto", "qwen2_5_omni", "qwen3_omni_moe", "qwen2_5_vl", "causal_lm"] = Field(
        "auto", description="Model family; auto reads it from the checkpoint config."
    )
    preprocessor: Literal["params", "checkpoint"] = Field(
        "params",
        description="Pixel budget of the processor: params (data.media.max_pixels; a checkpoint that "
        "says otherwise is logged) or checkpoint (its preprocessor config). Patch sizes, "
        "normalisation and audio features always come from the checkpoint.",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute each decoder layer's activations in backward instead of keeping them "
        "(7B-size models on one GPU need it; costs about a third more compute).",
    )
    unsupported_media: Literal["reject", "drop"] = Field(
        "reject",
        description="A sample whose media the model cannot take (sound for Qwen2.5-VL, any clip for a "
        "text-only model): reject it with a reason, or drop that media and keep the rest (logged).",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Parameter dtype.")
    trust_remote_code: bool = Field(
        False, description="Allow checkpoints that need remote code (e.g. Ola-7B)."
    )
    tiny: TinyModelConfig = Field(
        default_factory=TinyModelConfig, description="Shape of the embedded tiny model."
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="Optional LoRA adapters.")


class HintsConfig(Section):
    teacher: str = Field(
        "synthetic", description="'synthetic': the generator's own hints; else a transformers model name."
    )
    max_new_tokens: int = Field(64, gt=0, le=32_768, description="Length budget of a generated hint.")
    batch_size: int = Field(4, gt=0, le=4096, description="Prompts per teacher generation batch.")
    prompt: str = Field(
        "Give one short hint on how to approach this question without revealing the answer.",
        description="Instruction given to the teacher model.",
    )


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
        description="Learning rate of the vision and audio encoders as a share of lr; 0 freezes them. At "
        "the tiny model's learning rates the encoders' outputs grow to 100x the text embeddings' norm and "
        "lose what tells objects apart; the embedded default freezes them.",
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


class SFTConfig(Section):
    epochs: int = Field(2, gt=0, le=100_000, description="Passes over the training traces.")
    max_steps: int | None = Field(
        None, gt=0, le=BIG, description="Stop after this many optimiser steps (None: epochs)."
    )
    batch_size: int = Field(4, gt=0, le=65_536, description="Samples per micro-batch.")
    grad_accum: int = Field(1, gt=0, le=65_536, description="Micro-batches per optimiser step.")
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=10, schedule="cosine"),
        description="Optimiser and schedule.",
    )
    eval_every: int = Field(50, gt=0, le=BIG, description="Validate every N optimiser steps.")
    save_every: int = Field(100, gt=0, le=BIG, description="Checkpoint every N optimiser steps.")
    tasks: list[str] | None = Field(None, description="Task families to train on (None: all).")
    hint_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of training samples rendered with their hint (a system message 'Hint: ...'), so "
        "hinted RL prompts are in distribution; 0 never shows hints in SFT.",
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


# --------------------------------------------------------------------------- processes


class DistributedConfig(Section):
    num_processes: int = Field(
        1,
        ge=1,
        description="Processes `avatar sft` and `avatar rl` run (one per GPU); above 1 they start "
        "themselves through `accelerate launch`, so dvc repro and the Prefect flow use them too.",
    )
    sharding: Literal["replicated", "fsdp2"] = Field(
        "replicated",
        description="replicated: every process holds the whole model, gradients are all-reduced "
        "(small models); fsdp2: parameters, gradients and optimiser state sharded with "
        "torch.distributed.fsdp.fully_shard (large models).",
    )
    reshard_after_forward: bool = Field(
        True, description="fsdp2: free gathered parameters after each forward (less memory, more traffic)."
    )
    gather_for_rollout: bool = Field(
        True,
        description="fsdp2: gather the whole model once for generation (fast; needs room for all "
        "weights on each device) instead of one decoder layer per forward (slow, little memory).",
    )
    main_process_port: int = Field(
        0, ge=0, le=65535, description="Rendezvous port of the launched processes (0: a free port)."
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
    start: str = Field("sft", description="Checkpoint every cell starts from (the same for all cells).")
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


class RemoteConfig(Section):
    url: str = Field(
        "", description="DVC remote URL, e.g. s3://bucket/prefix ('' : the default local remote)."
    )
    endpoint_url: str = Field("", description="S3 endpoint for S3-compatible stores ('' : AWS).")
    profile: str = Field("", description="AWS profile name; credentials never live in params.yaml.")
    push_after_run: bool = Field(False, description="The flow pushes artifacts to the remote after a run.")
    commit_branch: str = Field(
        "", description="If set, the flow commits dvc.lock on this branch after a run."
    )


class AvatarConfig(Section):
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="Global seed for data, model init and sampling; 0..2**32-1, the range every "
        "generator seeded from it accepts (numpy's legacy seeding is the narrowest).",
    )
    num_threads: int = Field(
        0,
        ge=0,
        le=1024,
        description="torch intra-op threads per process (0: torch's default). Tiny models run fastest on 1.",
    )
    paths: PathsConfig = Field(default_factory=PathsConfig, description="Where each stage writes.")
    data: DataConfig = Field(default_factory=DataConfig, description="Data set and media decoding.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Policy model.")
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Training processes and sharding."
    )
    hints: HintsConfig = Field(default_factory=HintsConfig, description="Hint generation stage.")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="Cold-start SFT.")
    rl: RLConfig = Field(default_factory=RLConfig, description="The three RL stages.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Benchmark evaluation.")
    ablation: AblationConfig = Field(
        default_factory=AblationConfig, description="The AVATAR vs GRPO ablation and sample-efficiency study."
    )
    remote: RemoteConfig = Field(default_factory=RemoteConfig, description="Artifact remote.")

    @model_validator(mode="after")
    def _ablation_cells(self) -> AvatarConfig:
        """Every (setting, variant) of the study gives a valid RL stage config, checked at load time."""
        ab = self.ablation
        base = self.rl.stage(ab.stage).model_dump(mode="json")
        for setting_name, setting in ab.settings.items():
            for variant in setting.variants:
                raw = merge_sections(base, dotted_to_nested(setting.changes), RLStageConfig)
                raw = merge_sections(raw, dotted_to_nested(ab.variants[variant]), RLStageConfig)
                try:
                    cell = RLStageConfig.model_validate(raw)
                except ValidationError as err:
                    first = err.errors()[0]
                    key = ".".join(str(p) for p in first["loc"] if not _is_schema_tag(p))
                    raise ValueError(
                        f"ablation.variants.{variant}: in setting {setting_name!r} gives an invalid "
                        f"rl.{ab.stage} config: {key or 'stage'}: {first['msg'].removeprefix('Value error, ')}"
                    ) from None
                # the stage's own tasks are checked by _synthetic_data_fits under rl.<stage>.tasks
                generated = self.data.synthetic.tasks
                unknown = [repr(t) for t in cell.tasks if t not in generated and t not in base["tasks"]]
                if self.data.source == "synthetic" and unknown:
                    raise ValueError(
                        f"ablation.settings.{setting_name}: variant {variant!r} trains on unknown "
                        f"task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                        f"data.synthetic.tasks generates: {', '.join(generated)}"
                    )
        return self

    @model_validator(mode="after")
    def _synthetic_data_fits(self) -> AvatarConfig:
        """With synthetic data every task a stage names is generated. A family without samples in a
        split, and the tasks of an ingested data set, are reported when a stage loads the data
        (recipes.common.load_samples); whether the clips can hold `n_frames` cues is checked by
        `check_inputs` for `avatar ingest`, the one command that generates them."""
        if self.data.source != "synthetic":
            return self
        problems: list[str] = []
        generated = self.data.synthetic.tasks
        wanted = {"sft.tasks": self.sft.tasks or []}
        wanted |= {f"rl.{s}.tasks": self.rl.stage(s).tasks for s in STAGES}
        for key, names in wanted.items():
            unknown = [repr(n) for n in names if n not in generated]
            if unknown:
                problems.append(
                    f"{key}: unknown task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                    f"data.synthetic.tasks generates: {', '.join(generated)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------- loading


def _is_schema_tag(part: object) -> bool:
    """pydantic adds union members and validator names to error locations; they are not keys."""
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "none") or "[" in part or part.startswith("function-")
    )


_KEYED = re.compile(r"^([a-z_]\w*(?:\.\w+)+): (.+)$", re.S)  # "data.path: reason"


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    """(key path, reason) per problem, one entry per key path (union members' messages joined)."""
    by_path: dict[str, list[str]] = {}
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if not _is_schema_tag(p))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not a field of this section)"
        elif e["type"] != "value_error" and isinstance(e.get("input"), (str, int, float, bool)):
            msg = f"{msg} (got {e['input']!r})"  # built-in checks do not name the value
        # A cross-field check names the full key itself ("data.path: ..."), one per line.
        for line in msg.split("\n") if e["type"] == "value_error" else [msg]:
            keyed = _KEYED.match(line)
            where, reason = (keyed.group(1), keyed.group(2)) if keyed else (path, line)
            messages = by_path.setdefault(where or "<root>", [])
            if reason not in messages:
                messages.append(reason)
    return _inherited_once({path: "; or ".join(messages) for path, messages in by_path.items()})


def _inherited_once(problems: dict[str, str]) -> list[tuple[str, str]]:
    """A bad value in rl.defaults fails again in every stage that inherits it: report it once, at
    rl.defaults, naming those stages, rather than four times."""
    inherited: dict[str, list[str]] = {}
    for path, reason in problems.items():
        stage_key = re.fullmatch(r"rl\.(s\d)\.(.+)", path)
        if stage_key and problems.get(f"rl.defaults.{stage_key.group(2)}") == reason:
            inherited.setdefault(f"rl.defaults.{stage_key.group(2)}", []).append(f"rl.{stage_key.group(1)}")
    out = []
    for path, reason in problems.items():
        stage_key = re.fullmatch(r"rl\.(s\d)\.(.+)", path)
        if stage_key and f"rl.{stage_key.group(1)}" in inherited.get(f"rl.defaults.{stage_key.group(2)}", []):
            continue
        stages = inherited.get(path)
        out.append((path, f"{reason} (inherited by {', '.join(stages)})" if stages else reason))
    return out


def _format_error(err: ValidationError, source: str) -> ConfigError:
    problems = _problems(err)
    lines = [f"invalid configuration in {source}:"] + [f"  {path}: {reason}" for path, reason in problems]
    return ConfigError("\n".join(lines), problems)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's own words without its multi-line excerpt of the text."""
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    text = ", ".join(p for p in parts if p) or str(err).splitlines()[0]
    return text


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.path=value")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(re.fullmatch(r"[\w-]+", part) for part in parts):
        raise ConfigError(
            f"override {assignment!r}: {key!r} is not a dotted key path such as rl.s1.steps",
            [(key or "<empty key>", f"--set {assignment!r}: not a dotted key path such as rl.s1.steps")],
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        reason = f"--set value {raw!r} is not valid YAML ({_yaml_problem(err)})"
        raise ConfigError(f"override {assignment!r}: {reason}", [(key, reason)]) from None
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(
                f"override {assignment!r}: {part!r} is not a section",
                [(key, f"--set {assignment!r}: {part!r} is not a section")],
            )
    node[parts[-1]] = value


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> AvatarConfig:
    try:
        return AvatarConfig.model_validate(expand_rl_defaults(data))
    except ValidationError as err:
        raise _format_error(err, source) from None


def load_config(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> AvatarConfig:
    """Read params.yaml, apply `key.path=value` overrides, validate, return the typed config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}", [(str(path), "params file not found")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        reason = f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        raise ConfigError(f"{path}: {reason}", [(str(path), reason)]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = f"not valid YAML ({_yaml_problem(err)})"
        raise ConfigError(f"{path} is not valid YAML: {err}", [(where, reason)]) from None
    if not isinstance(data, dict):
        reason = "the top level must be a mapping of sections"
        raise ConfigError(f"{path}: {reason}", [(str(path), reason)])
    for assignment in overrides or []:
        apply_override(data, assignment)
    return config_from_dict(data, str(path))


def check_inputs(cfg: AvatarConfig, command: str) -> None:
    """What a command reads from outside the params file, checked before it starts (ConfigError).

    Only `ingest` reads user files named in the config or generates clips; later stages read what
    ingest wrote and check it themselves (a stage's tasks against the ingested data set, say)."""
    problems: list[tuple[str, str]] = []
    if command == "ingest" and cfg.data.source == "synthetic":
        from avatar_core.data.synthetic_scene import clip_spec

        syn = cfg.data.synthetic
        try:
            clip_spec(syn.frame_size, syn.fps, syn.duration_s, syn.sample_rate, cfg.data.media.n_frames)
        except ValueError as err:
            problems.append(("data.media.n_frames", str(err)))
    if command == "ingest" and cfg.data.source != "synthetic":
        if not Path(cfg.data.path or "").exists():
            problems.append(("data.path", f"{cfg.data.path} does not exist"))
        if cfg.data.media_root and not Path(cfg.data.media_root).is_dir():
            problems.append(("data.media_root", f"{cfg.data.media_root} is not a folder"))
    if problems:
        lines = [f"{where}: {reason}" for where, reason in problems]
        raise ConfigError("\n".join(lines), problems)
