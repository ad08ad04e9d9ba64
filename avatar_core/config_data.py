"""Configuration sections for paths, data (synthetic generator, media decoding, the clip loader) and
the model (the tiny thinker, LoRA, real checkpoints). Part of `avatar_core.config`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from avatar_core.config_base import BIG, Section, _known_unique

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
    train_only_tasks: list[str] = Field(
        default_factory=list,
        description="Families generated in the train and validation splits only, never in test: "
        "auxiliary skills a stage can learn first (`locate` teaches where a square is, sft.warmup) "
        "without counting in the held-out score. The train split is spread over `tasks` and these.",
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
    glow: Literal["plain", "patterned"] = Field(
        "plain",
        description="How a flash of av_match, localise and locate lights the scene: `plain` in the square's "
        "colour; `patterned` in its colour through its quadrant's stripes, so where the flashing square is "
        "can be read from every token of the frame (docs/embedded-default.md measures both).",
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

    @field_validator("train_only_tasks")
    @classmethod
    def _train_only_known(cls, v: list[str]) -> list[str]:
        from avatar_core.data.synthetic_tasks import TASKS

        return _known_unique("synthetic task", v, tuple(TASKS.names())) if v else v

    @model_validator(mode="after")
    def _train_only_apart(self) -> SyntheticConfig:
        both = [t for t in self.train_only_tasks if t in self.tasks]
        if both:
            raise ValueError(
                f"train_only_tasks: {', '.join(both)} also in data.synthetic.tasks; a family is either "
                "scored on the test split (tasks) or trained only (train_only_tasks)"
            )
        return self

    def split_tasks(self, split: str) -> list[str]:
        """The families a split holds: `tasks`, plus `train_only_tasks` outside the test split."""
        return list(self.tasks) if split == "test" else self.all_tasks

    @property
    def all_tasks(self) -> list[str]:
        return [*self.tasks, *self.train_only_tasks]


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
