"""The Qwen2.5-Omni processor without torchvision.

transformers' video processors need torchvision, and no CPU torchvision exists on our package
index, so `NumpyVideoProcessor` patchifies frames in numpy into exactly the layout of
`Qwen2VLVideoProcessor` (normalise with the CLIP mean/std, pad the frame count to a multiple of
the temporal patch, then order patches as [t, h/merge, w/merge, merge, merge, C, tp, p, p] so each
2x2 spatial merge group is contiguous). Frames whose size is not a multiple of 28 or exceeds the
pixel budget are resized with PIL by Qwen2-VL's `smart_resize` rule. Everything else (audio
features, token expansion, audio-in-video interleaving) is the stock `Qwen2_5OmniProcessor`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from transformers import (
    Qwen2_5_VLProcessor,
    Qwen2_5OmniProcessor,
    Qwen2VLImageProcessorPil,
    WhisperFeatureExtractor,
)
from transformers.feature_extraction_utils import BatchFeature
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from transformers.processing_utils import ProcessorMixin

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
VIDEO_CONFIG_NAME = "video_preprocessor_config.json"


class NumpyVideoProcessor:
    """Torchvision-free stand-in for `Qwen2VLVideoProcessor` (same output layout and keys)."""

    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def __init__(
        self,
        max_pixels: int = 56 * 56,
        min_pixels: int = 28 * 28,
        patch_size: int = 14,
        merge_size: int = 2,
        temporal_patch_size: int = 2,
    ) -> None:
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels
        self.patch_size = patch_size
        self.merge_size = merge_size
        self.temporal_patch_size = temporal_patch_size

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """Resize [T, H, W, 3] uint8 frames to Qwen2-VL's smart size when they do not fit it."""
        height, width = frames.shape[1:3]
        new_h, new_w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        if (new_h, new_w) == (height, width):
            return frames
        return np.stack(
            [np.asarray(Image.fromarray(f).resize((new_w, new_h), Image.BICUBIC)) for f in frames]
        )

    def patchify(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """[T, H, W, 3] uint8 -> (patches [gt*gh*gw, 3*tp*p*p] float32, grid [gt, gh, gw])."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"video frames must have shape [T, H, W, 3], got {list(frames.shape)}")
        if frames.dtype != np.uint8:
            raise ValueError(f"video frames must be uint8, got {frames.dtype}")
        frames = self._resize(frames)
        x = ((frames.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD).transpose(0, 3, 1, 2)  # [T, C, H, W]
        P, M, TP = self.patch_size, self.merge_size, self.temporal_patch_size
        if x.shape[0] % TP:  # repeat the last frame, as Qwen2-VL does
            x = np.concatenate([x, np.repeat(x[-1:], TP - x.shape[0] % TP, axis=0)])
        T, C, H, W = x.shape
        gt, gh, gw = T // TP, H // P, W // P
        patches = x.reshape(gt, TP, C, gh // M, M, P, gw // M, M, P)
        patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [gt, gh/M, gw/M, M, M, C, TP, P, P]
        return patches.reshape(gt * gh * gw, C * TP * P * P), [gt, gh, gw]

    def __call__(self, videos: Any, return_tensors: str | None = None, **unused: Any) -> BatchFeature:
        if isinstance(videos, np.ndarray) and videos.ndim == 4:
            videos = [videos]
        patch_list, grids = [], []
        for frames in videos:
            patches, grid = self.patchify(frames)
            patch_list.append(patches)
            grids.append(grid)
        data = {"pixel_values_videos": np.concatenate(patch_list), "video_grid_thw": np.array(grids)}
        return BatchFeature(data, tensor_type=return_tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "processor_class": type(self).__name__,
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": self.temporal_patch_size,
        }

    def save_pretrained(self, out_dir: str | Path) -> None:
        Path(out_dir, VIDEO_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumpyVideoProcessor:
        keys = ("max_pixels", "min_pixels", "patch_size", "merge_size", "temporal_patch_size")
        return cls(**{k: int(data[k]) for k in keys if k in data})


def _accept_numpy_video(processor: ProcessorMixin, argument_name: str, argument: Any) -> Any:
    if argument_name == "video_processor" and isinstance(argument, NumpyVideoProcessor):
        return type(argument)
    return ProcessorMixin.check_argument_for_proper_class(processor, argument_name, argument)


class OmniProcessor(Qwen2_5OmniProcessor):
    """`Qwen2_5OmniProcessor` that accepts the numpy video processor."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        return _accept_numpy_video(self, argument_name, argument)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """Tokenizer, one preprocessor_config.json, and the video config as JSON.

        Like the released Qwen2.5-Omni checkpoints, the Whisper feature extractor and the image
        processor share one `preprocessor_config.json` (their keys do not collide), so each can be
        read back with its own `from_pretrained`.
        """
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        merged = {**self.image_processor.to_dict(), **self.feature_extractor.to_dict()}
        merged["processor_class"] = "Qwen2_5OmniProcessor"
        (folder / "preprocessor_config.json").write_text(
            json.dumps(merged, indent=2, sort_keys=True, default=str)
        )
        self.video_processor.save_pretrained(folder)


class VLProcessor(Qwen2_5_VLProcessor):
    """`Qwen2_5_VLProcessor` (vision only) that accepts the numpy video processor."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        return _accept_numpy_video(self, argument_name, argument)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.image_processor.save_pretrained(folder)
        self.video_processor.save_pretrained(folder)


def build_processor(tokenizer: Any, max_pixels: int, temporal_patch_size: int = 2) -> OmniProcessor:
    """Omni processor: Whisper features (128 mel bins, 16 kHz), Qwen2-VL PIL images, numpy video."""
    if max_pixels < 28 * 28:
        raise ValueError(f"max_pixels must be at least {28 * 28} (one 28x28 merge group), got {max_pixels}")
    feature_extractor = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400
    )
    min_pixels = min(56 * 56, max_pixels)
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    video_processor = NumpyVideoProcessor(
        max_pixels=max_pixels, min_pixels=28 * 28, temporal_patch_size=temporal_patch_size
    )
    return OmniProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=feature_extractor,
        tokenizer=tokenizer,
    )


def load_processor(
    folder: str | Path, tokenizer: Any, max_pixels: int | None = None, kind: str = "qwen2_5_omni"
) -> OmniProcessor | VLProcessor:
    """Rebuild the processor of a saved folder around `tokenizer` (no torchvision needed).

    The feature extractor and image processor configs are read when present (a real Qwen2.5-Omni
    checkpoint ships them); the video processor reads its JSON or, for a real checkpoint, uses
    the image processor's pixel budget. `max_pixels` overrides the saved budget.
    """
    folder = Path(folder)
    processor = build_processor(tokenizer, max_pixels or 56 * 56)
    if (folder / "preprocessor_config.json").is_file():
        saved = json.loads((folder / "preprocessor_config.json").read_text())
        if "feature_size" in saved:
            processor.feature_extractor = WhisperFeatureExtractor.from_pretrained(folder)
        if "patch_size" in saved:
            processor.image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder)
    video_cfg = folder / VIDEO_CONFIG_NAME
    video = NumpyVideoProcessor.from_dict(json.loads(video_cfg.read_text())) if video_cfg.is_file() else None
    if video is None:
        video = NumpyVideoProcessor(max_pixels=processor.image_processor.size.get("longest_edge", 56 * 56))
    if max_pixels is not None:
        video.max_pixels = max_pixels
        processor.image_processor.size = {
            "shortest_edge": min(56 * 56, max_pixels),
            "longest_edge": max_pixels,
        }
    processor.video_processor = video
    if kind == "qwen2_5_vl":
        return VLProcessor(
            image_processor=processor.image_processor, video_processor=video, tokenizer=tokenizer
        )
    return processor
