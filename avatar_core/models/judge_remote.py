"""InternVL's original release (model_type `internvl_chat`): code from its repository, opt-in only.

`OpenGVLab/InternVL3-2B` as first released ships its model class in the repository, so loading
it runs that code; `load_judge_model` calls this module only when params.yaml opts in with
`reward_options.judge_trust_remote_code: true`. The model is then driven through the release's
documented video recipe: each frame resized to one square tile (448 px, bicubic), normalised with
the ImageNet mean and std, the question prefixed with "Frame1: <image>\\n Frame2: <image>\\n ...",
and `model.chat(tokenizer, pixel_values, question, generation_config, num_patches_list=[1] * n)`
with the judge instruction as the model's `system_message`. Prefer the native layout
(`OpenGVLab/InternVL3-2B-hf`, `avatar_core.models.internvl`): it needs no remote code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from avatar_core.models.internvl import IMAGENET_MEAN, IMAGENET_STD

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def frames_to_tiles(frames: list[np.ndarray], tile: int) -> torch.Tensor:
    """[n] x [H, W, 3] uint8 -> [n, 3, tile, tile] float32, resized and ImageNet-normalised."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    tiles = []
    for frame in frames:
        resized = np.asarray(Image.fromarray(frame).resize((tile, tile), Image.BICUBIC), np.float32) / 255.0
        tiles.append(((resized - mean) / std).transpose(2, 0, 1))  # [3, tile, tile]
    return torch.from_numpy(np.stack(tiles))  # [n, 3, tile, tile]


class RemoteInternVL:
    """The release's model and tokenizer, with the judge call of its video recipe."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        if not callable(getattr(model, "chat", None)):
            raise TypeError(f"{type(model).__name__} has no chat() method: not an InternVL chat release")
        self.model = model.eval()
        self.tokenizer = tokenizer
        config = model.config
        size = getattr(config, "force_image_size", None) or getattr(config.vision_config, "image_size", 448)
        self.tile_size = int(size[0] if isinstance(size, (list, tuple)) else size)

    @torch.no_grad()
    def judge(
        self, system: str, texts: list[str], frames: list[list[np.ndarray]], max_new_tokens: int
    ) -> list[str]:
        self.model.system_message = system
        parameter = next(self.model.parameters())
        answers = []
        for text, clip_frames in zip(texts, frames, strict=True):
            generation = {"max_new_tokens": max_new_tokens, "do_sample": False}
            if not clip_frames:
                answers.append(self.model.chat(self.tokenizer, None, text, generation))
                continue
            pixels = frames_to_tiles(clip_frames, self.tile_size).to(parameter.device, parameter.dtype)
            prefix = "".join(f"Frame{i + 1}: <image>\n" for i in range(len(clip_frames)))
            answers.append(
                self.model.chat(
                    self.tokenizer, pixels, prefix + text, generation, num_patches_list=[1] * len(clip_frames)
                )
            )
        return answers


def load_remote_internvl(name_or_path: str, dtype: str = "float32") -> RemoteInternVL:
    """Load the release with its repository code (the caller has checked the opt-in)."""
    from transformers import AutoModel, AutoTokenizer

    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
    model = AutoModel.from_pretrained(name_or_path, trust_remote_code=True, dtype=_DTYPES[dtype])
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=True, use_fast=False)
    return RemoteInternVL(model, tokenizer)
