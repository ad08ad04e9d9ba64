"""Model kinds: what each family of checkpoints takes as input and how its media tokens are named.

One `KindSpec` per family this package trains. The rest of `models/` asks the spec instead of
assuming Qwen2.5-Omni: which config `model_type`s belong to the kind, whether it sees video and
hears audio, and the token strings that mark media in a prompt. Those strings differ between
families: Qwen2.5-Omni renamed Qwen2's `<|vision_start|>`/`<|video_pad|>` to
`<|vision_bos|>`/`<|VIDEO|>` and added `<|AUDIO|>`; Qwen3-Omni went back to the Qwen2 names and
added `<|audio_start|>`/`<|audio_pad|>`; Qwen2.5-VL has no audio tokens at all.

`fit_samples(kind, samples, policy)` applies `model.unsupported_media` to a list of samples: a
sample whose media the kind cannot take (a clip with sound for a video-only model, any clip for a
text-only model) is rejected with a reason, or, with `drop`, kept with that media removed and
the choice logged once with the number of samples it touched.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaTokens:
    """Token strings of one family's media markers (None: the family has no such token)."""

    image: str | None = None
    video: str | None = None
    audio: str | None = None
    vision_start: str | None = None
    vision_end: str | None = None
    audio_start: str | None = None
    audio_end: str | None = None
    vision_pad: str | None = None

    def all(self) -> tuple[str, ...]:
        """Every marker the family defines: never sampled, since a completion holding one would
        make the teacher-forced pass look for media that does not exist."""
        return tuple(t for t in dataclasses.astuple(self) if t)

    def tokenizer_attributes(self) -> dict[str, str]:
        """The attribute names transformers' Omni/VL processors read from the tokenizer."""
        names = {
            "image_token": self.image,
            "video_token": self.video,
            "audio_token": self.audio,
            "vision_bos_token": self.vision_start,
            "vision_eos_token": self.vision_end,
            "audio_bos_token": self.audio_start,
            "audio_eos_token": self.audio_end,
        }
        return {k: v for k, v in names.items() if v}


@dataclass(frozen=True)
class KindSpec:
    name: str
    model_types: tuple[str, ...]  # config.json `model_type` values that detect this kind
    takes_video: bool
    takes_audio: bool
    tokens: MediaTokens
    description: str


OMNI_TOKENS = MediaTokens(
    image="<|IMAGE|>",
    video="<|VIDEO|>",
    audio="<|AUDIO|>",
    vision_start="<|vision_bos|>",
    vision_end="<|vision_eos|>",
    audio_start="<|audio_bos|>",
    audio_end="<|audio_eos|>",
    vision_pad="<|vision_pad|>",
)
QWEN3_OMNI_TOKENS = MediaTokens(
    image="<|image_pad|>",
    video="<|video_pad|>",
    audio="<|audio_pad|>",
    vision_start="<|vision_start|>",
    vision_end="<|vision_end|>",
    audio_start="<|audio_start|>",
    audio_end="<|audio_end|>",
    vision_pad="<|vision_pad|>",
)
VL_TOKENS = MediaTokens(
    image="<|image_pad|>",
    video="<|video_pad|>",
    vision_start="<|vision_start|>",
    vision_end="<|vision_end|>",
    vision_pad="<|vision_pad|>",
)

KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(
            "qwen2_5_omni",
            ("qwen2_5_omni", "qwen2_5_omni_thinker"),
            True,
            True,
            OMNI_TOKENS,
            "Qwen2.5-Omni thinker: video with its audio track",
        ),
        KindSpec(
            "qwen3_omni_moe",
            ("qwen3_omni_moe", "qwen3_omni_moe_thinker"),
            True,
            True,
            QWEN3_OMNI_TOKENS,
            "Qwen3-Omni MoE thinker: video with its audio track",
        ),
        KindSpec(
            "qwen2_5_vl",
            ("qwen2_5_vl",),
            True,
            False,
            VL_TOKENS,
            "Qwen2.5-VL: video frames, no audio",
        ),
        KindSpec("causal_lm", (), False, False, MediaTokens(), "a causal language model: text only"),
    )
}


def kind_spec(name: str) -> KindSpec:
    if name not in KINDS:
        raise ValueError(f"unknown model kind {name!r}; valid kinds: auto, {', '.join(KINDS)}")
    return KINDS[name]


def kind_of_model_type(model_type: str) -> str:
    """The kind whose checkpoints carry `model_type`; any other model type is a causal LM."""
    for spec in KINDS.values():
        if model_type in spec.model_types:
            return spec.name
    return "causal_lm"


def ensure_media_tokens(tokenizer: Any, kind: str) -> None:
    """Give the tokenizer the media-token attributes of its kind when its config lacks them.

    Released tokenizer_config.json files predate these attributes (the processors of
    transformers 5 read `tokenizer.video_token` and friends); each token must exist in the
    vocabulary, or the checkpoint does not belong to the kind.
    """
    attributes = kind_spec(kind).tokens.tokenizer_attributes()
    vocab = tokenizer.get_vocab()
    missing_tokens = sorted({t for t in attributes.values() if t not in vocab})
    if missing_tokens:
        raise ValueError(
            f"the tokenizer has no {', '.join(missing_tokens)} token(s), which model kind {kind!r} "
            "needs for its media: is model.kind right for this checkpoint?"
        )
    absent = {k: v for k, v in attributes.items() if getattr(tokenizer, k, None) != v}
    if absent:
        # transformers' own hook for model-specific special tokens (what `extra_special_tokens`
        # in a tokenizer_config.json sets): gives `tokenizer.video_token` and `video_token_id`.
        tokenizer._set_model_specific_special_tokens(absent)


def _unsupported(spec: KindSpec, sample: Any) -> str:
    """What of the sample's media the kind cannot take ('' when it takes all of it)."""
    if not sample.video:
        return ""
    if not spec.takes_video:
        return "video"
    if sample.has_audio and not spec.takes_audio:
        return "audio"
    return ""


def fit_samples(
    kind: str, samples: Iterable[Any], policy: str, where: str = "samples", require_any: bool = True
) -> tuple[list[Any], list[dict[str, str]]]:
    """(samples the model can take, rejections) under `model.unsupported_media` = reject | drop.

    With `require_any`, rejecting every sample is an error that says why, instead of a stage
    that trains or evaluates on nothing.
    """
    if policy not in ("reject", "drop"):
        raise ValueError(f"unsupported_media must be 'reject' or 'drop', got {policy!r}")
    spec = kind_spec(kind)
    kept: list[Any] = []
    rejected: list[dict[str, str]] = []
    dropped: dict[str, int] = {}
    for sample in samples:
        what = _unsupported(spec, sample)
        if not what:
            kept.append(sample)
        elif policy == "reject":
            reason = (
                f"model kind {kind} ({spec.description}) cannot take the {what} of this sample "
                f"({sample.video}); set model.unsupported_media: drop to train on the rest of it"
            )
            rejected.append({"id": sample.id, "video": sample.video, "reason": reason})
        else:
            dropped[what] = dropped.get(what, 0) + 1
            if what == "video":
                kept.append(dataclasses.replace(sample, video="", has_audio=False))
            else:
                kept.append(dataclasses.replace(sample, has_audio=False))
    for what, count in dropped.items():
        log.warning(
            "%s: model kind %s cannot take %s; %d sample(s) run without it (model.unsupported_media: drop)",
            where,
            kind,
            "clips at all: questions go as text only" if what == "video" else "audio: frames only",
            count,
        )
    for r in rejected:
        log.warning("%s: rejected sample %s: %s", where, r["id"], r["reason"])
    if require_any and rejected and not kept:
        raise ValueError(f"{where}: all {len(rejected)} samples rejected: {rejected[0]['reason']}")
    return kept, rejected
