"""InternVL3 in the native transformers layout: loading, the frame processor, a shrunken builder.

The paper's judge is InternVL3-2B. transformers ships it natively as
`InternVLForConditionalGeneration` (model_type `internvl`, the `OpenGVLab/InternVL3-*-hf`
releases: config.json, safetensors, a Qwen2 tokenizer with the named image tokens `<img>`,
`</img>`, `<IMG_CONTEXT>`, a GotOcr2 image processor config and the chat template). This module
loads that layout without torchvision: transformers' `AutoProcessor` insists on building
InternVL's video processor, which needs torchvision, and no CPU torchvision exists on our
package index. Video is not needed anyway: like InternVL's own video recipe, the judge is shown
the sampled frames as images, one 448 px tile each (`crop_to_patches=False`), so
`FrameProcessor` is InternVL's processor with the PIL image processor and no video processor.

`build_tiny_internvl` makes a shrunken random-weight InternVL3 (a locally trained byte-level BPE
wrapped as the Qwen2 tokenizer with InternVL's special tokens, 56 px tiles of 4 tokens) and
`save_internvl` writes it in the released native layout, so tests and the embedded default load
it through the same `load_internvl` as the real checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoTokenizer,
    GotOcr2ImageProcessorPil,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    PreTrainedModel,
    Qwen2Tokenizer,
)
from transformers.processing_utils import ProcessorMixin

from avatar_core.models.tokenizer import chatml_tokenizer, train_byte_level_bpe

INTERNVL_MODEL_TYPE = "internvl"
# The special tokens of the InternVL3 (Qwen2.5-based) releases that matter here, by string.
INTERNVL_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
]
# The chat template of the native releases: an image item becomes `<IMG_CONTEXT>\n`, which the
# processor expands to `<img><IMG_CONTEXT>*image_seq_length</img>`.
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class FrameProcessor(InternVLProcessor):
    """InternVL's processor for images only: PIL image processor, no video processor (no torchvision)."""

    def __init__(
        self,
        image_processor: Any,
        tokenizer: Any,
        image_seq_length: int = 256,
        chat_template: str | None = None,
    ) -> None:
        ProcessorMixin.__init__(self, image_processor, tokenizer, None, chat_template=chat_template)
        self.image_seq_length = image_seq_length
        self.start_image_token = tokenizer.start_image_token
        self.end_image_token = tokenizer.end_image_token
        self.start_image_token_id = tokenizer.start_image_token_id
        self.end_image_token_id = tokenizer.end_image_token_id
        self.image_token = tokenizer.context_image_token
        self.image_token_id = tokenizer.context_image_token_id
        self.video_token = getattr(tokenizer, "video_token", None) or "<video>"
        self.multimodal_pattern = re.compile(
            f"(?P<image>{re.escape(self.image_token)})|(?P<video>{re.escape(self.video_token)})"
        )

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def tile_size(self) -> int:
        """Side of the square tile every frame is resized to (448 for the released models)."""
        return int(self.image_processor.size.height)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """Tokenizer, preprocessor_config.json, processor_config.json and the chat template, as released."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.image_processor.save_pretrained(folder)
        config = {"image_seq_length": self.image_seq_length, "processor_class": "InternVLProcessor"}
        (folder / "processor_config.json").write_text(json.dumps(config, indent=2) + "\n")
        if self.chat_template:
            (folder / "chat_template.jinja").write_text(self.chat_template)


@dataclass
class InternVLBundle:
    """An InternVL model with its frame processor (tokenizer at `processor.tokenizer`)."""

    model: PreTrainedModel
    processor: FrameProcessor

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer


def is_internvl_native(raw_config: dict[str, Any]) -> bool:
    return raw_config.get("model_type") == INTERNVL_MODEL_TYPE


def _chat_template(folder: Path, tokenizer: Any) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    as_json = folder / "chat_template.json"
    if as_json.is_file():
        return json.loads(as_json.read_text()).get("chat_template")
    return tokenizer.chat_template


def load_internvl(folder: str | Path, dtype: str = "float32") -> InternVLBundle:
    """Load a native-layout InternVL checkpoint (a folder, or a hub name from the local cache)."""
    folder = Path(folder)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(folder)))
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
    raw = json.loads((folder / "config.json").read_text())
    if not is_internvl_native(raw):
        raise ValueError(
            f"{folder}: model_type {raw.get('model_type')!r} is not the native {INTERNVL_MODEL_TYPE!r}"
        )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    missing = [
        name
        for name in ("start_image_token", "end_image_token", "context_image_token")
        if getattr(tokenizer, name, None) is None
    ]
    if missing:
        raise ValueError(
            f"{folder}: the tokenizer names no {', '.join(missing)} (tokenizer_config.json extra_special_tokens); "
            "not an InternVL tokenizer"
        )
    tokenizer.padding_side = "left"
    if not (folder / "preprocessor_config.json").is_file():
        raise FileNotFoundError(f"{folder} has no preprocessor_config.json (the InternVL image processor)")
    image_processor = GotOcr2ImageProcessorPil.from_pretrained(folder)
    seq_length = 256
    if (folder / "processor_config.json").is_file():
        seq_length = int(
            json.loads((folder / "processor_config.json").read_text()).get("image_seq_length", 256)
        )
    processor = FrameProcessor(image_processor, tokenizer, seq_length, _chat_template(folder, tokenizer))
    model = InternVLForConditionalGeneration.from_pretrained(folder, dtype=_DTYPES[dtype])
    model.eval().requires_grad_(False)
    return InternVLBundle(model=model, processor=processor)


def save_internvl(bundle: InternVLBundle, folder: str | Path) -> None:
    """Write config.json, safetensors weights and the processor files in the released native layout."""
    folder = Path(folder)
    bundle.model.save_pretrained(folder, safe_serialization=True)
    bundle.processor.save_pretrained(folder)


# --------------------------------------------------------------------------- the shrunken judge

_JUDGE_CORPUS = [
    "You are a strict judge of reasoning about a video with sound. Rate the reasoning below for "
    "perception and reasoning, each from 0 to 5. Reply with JSON only.",
    '{"perception": 3, "reasoning": 4} {"perception": 0, "reasoning": 5} {"scores": [1, 2]}',
    "Question: How many beeps do you hear? Reasoning to rate: I count three flashes and two beeps.",
    "Frame1: Frame2: Frame3: Frame4: Frame5: Frame6: Frame7: Frame8: Scores as JSON:",
]


def train_internvl_tokenizer(corpus: Iterable[str], vocab_size: int = 512) -> Qwen2Tokenizer:
    """A small byte-level BPE wrapped as the Qwen2 tokenizer of the InternVL3 releases."""
    vocab, merges = train_byte_level_bpe(list(corpus) * 10, vocab_size, INTERNVL_SPECIAL_TOKENS)
    return chatml_tokenizer(
        vocab,
        merges,
        INTERNVL_SPECIAL_TOKENS,
        INTERNVL_CHAT_TEMPLATE,
        start_image_token="<img>",
        end_image_token="</img>",
        context_image_token="<IMG_CONTEXT>",
        video_token="<video>",
    )


def tiny_internvl_config(
    tokenizer: Any,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_dim: int = 32,
    vision_layers: int = 2,
    tile_size: int = 56,
) -> InternVLConfig:
    """An InternVL3 config shrunk to CPU size: Qwen2 text model, 14 px patches, tiles of `tile_size`."""
    if tile_size % 28:
        raise ValueError(
            f"tile_size must be a multiple of 28 (14 px patches, 2x2 pixel shuffle), got {tile_size}"
        )
    return InternVLConfig(
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": False,
        },
        vision_config={
            "hidden_size": vision_dim,
            "intermediate_size": 2 * vision_dim,
            "num_hidden_layers": vision_layers,
            "num_attention_heads": 4,
            "image_size": tile_size,
            "patch_size": 14,
        },
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=tiny_image_seq_length(tile_size),
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )


def tiny_image_seq_length(tile_size: int) -> int:
    """Tokens per tile: (tile / 14)^2 patches, halved in each direction by the pixel shuffle."""
    return (tile_size // 14) ** 2 // 4


def build_tiny_internvl(
    seed: int = 0, tile_size: int = 56, corpus: Iterable[str] = (), vocab_size: int = 512
) -> InternVLBundle:
    """A shrunken InternVL3 with seeded random weights (scores are noise; the code paths are real)."""
    tokenizer = train_internvl_tokenizer([*_JUDGE_CORPUS, *corpus], vocab_size)
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": tile_size, "width": tile_size},
        crop_to_patches=False,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    processor = FrameProcessor(
        image_processor, tokenizer, tiny_image_seq_length(tile_size), INTERNVL_CHAT_TEMPLATE
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = InternVLForConditionalGeneration(tiny_internvl_config(tokenizer, tile_size=tile_size))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return InternVLBundle(model=model.eval(), processor=processor)
