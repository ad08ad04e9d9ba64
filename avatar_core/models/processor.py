"""The processors of every multimodal kind, without torchvision.

transformers' video processors need torchvision, and no CPU torchvision exists on our package
index, so `NumpyVideoProcessor` patchifies frames in numpy into exactly the layout of
`Qwen2VLVideoProcessor` (normalise with the checkpoint's mean/std, CLIP's by default, pad the
frame count to a multiple of the temporal patch, then order patches as
[t, h/merge, w/merge, merge, merge, C, tp, p, p] so each 2x2 spatial merge group is contiguous).
Frames whose size is not a multiple of patch x merge (28 for Qwen2.5, 32 for Qwen3-Omni) or
exceed the pixel budget are resized with PIL by Qwen2-VL's `smart_resize` rule. Everything else
(audio features, token expansion, audio-in-video interleaving) is the stock processor of the kind:
`Qwen2_5OmniProcessor`, `Qwen3OmniMoeProcessor` or `Qwen2_5_VLProcessor` (no audio).

Which settings win (logged by `load_processor`): patch, merge and temporal patch sizes, the
normalisation and the Whisper features always come from the checkpoint (the encoders were trained
with them). The pixel budget comes from params.yaml `data.media.max_pixels` by default
(`model.preprocessor: params`; a differing checkpoint value is logged as a warning), or from the
checkpoint's own preprocessor config with `model.preprocessor: checkpoint`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from transformers import (
    Qwen2_5_VLProcessor,
    Qwen2_5OmniProcessor,
    Qwen2VLImageProcessorPil,
    Qwen3OmniMoeProcessor,
    WhisperFeatureExtractor,
)
from transformers.feature_extraction_utils import BatchFeature
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from transformers.processing_utils import ProcessorMixin
from transformers.video_utils import VideoMetadata

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
VIDEO_CONFIG_NAME = "video_preprocessor_config.json"
DEFAULT_MAX_PIXELS = 56 * 56

log = logging.getLogger(__name__)


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
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
    ) -> None:
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels
        self.patch_size = patch_size
        self.merge_size = merge_size
        self.temporal_patch_size = temporal_patch_size
        self.image_mean = np.asarray(image_mean if image_mean is not None else CLIP_MEAN, np.float32)
        self.image_std = np.asarray(image_std if image_std is not None else CLIP_STD, np.float32)

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
        x = ((frames.astype(np.float32) / 255.0 - self.image_mean) / self.image_std).transpose(
            0, 3, 1, 2
        )  # [T, C, H, W]
        P, M, TP = self.patch_size, self.merge_size, self.temporal_patch_size
        if x.shape[0] % TP:  # repeat the last frame, as Qwen2-VL does
            x = np.concatenate([x, np.repeat(x[-1:], TP - x.shape[0] % TP, axis=0)])
        T, C, H, W = x.shape
        gt, gh, gw = T // TP, H // P, W // P
        patches = x.reshape(gt, TP, C, gh // M, M, P, gw // M, M, P)
        patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [gt, gh/M, gw/M, M, M, C, TP, P, P]
        return patches.reshape(gt * gh * gw, C * TP * P * P), [gt, gh, gw]

    def __call__(
        self, videos: Any, return_tensors: str | None = None, fps: float | None = None, **unused: Any
    ) -> BatchFeature:
        if isinstance(videos, np.ndarray) and videos.ndim == 4:
            videos = [videos]
        patch_list, grids = [], []
        for frames in videos:
            patches, grid = self.patchify(frames)
            patch_list.append(patches)
            grids.append(grid)
        data = {"pixel_values_videos": np.concatenate(patch_list), "video_grid_thw": np.array(grids)}
        out = BatchFeature(data, tensor_type=return_tensors)
        if fps is not None:  # Qwen2.5-VL's processor reads the frame rate of the sampled frames here
            out["video_metadata"] = [VideoMetadata(total_num_frames=len(f), fps=float(fps)) for f in videos]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "processor_class": type(self).__name__,
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": self.temporal_patch_size,
            "image_mean": self.image_mean.tolist(),
            "image_std": self.image_std.tolist(),
        }

    def save_pretrained(self, out_dir: str | Path) -> None:
        Path(out_dir, VIDEO_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumpyVideoProcessor:
        """Our own JSON, a released preprocessor_config.json, or a transformers video processor
        config (whose budget is `size: {longest_edge, shortest_edge}`)."""
        size = data.get("size") if isinstance(data.get("size"), dict) else {}
        data = {"max_pixels": size.get("longest_edge"), "min_pixels": size.get("shortest_edge"), **data}
        keys = ("max_pixels", "min_pixels", "patch_size", "merge_size", "temporal_patch_size")
        kwargs: dict[str, Any] = {k: int(data[k]) for k in keys if data.get(k) is not None}
        for key in ("image_mean", "image_std"):
            if data.get(key) is not None:
                kwargs[key] = [float(v) for v in data[key]]
        return cls(**kwargs)


def _accept_numpy_video(processor: ProcessorMixin, argument_name: str, argument: Any) -> Any:
    if argument_name == "video_processor" and isinstance(argument, NumpyVideoProcessor):
        return type(argument)
    return ProcessorMixin.check_argument_for_proper_class(processor, argument_name, argument)


class _SavesOnePreprocessorConfig:
    """Tokenizer, one preprocessor_config.json, and the video config as JSON.

    Like the released Omni checkpoints, the Whisper feature extractor and the image processor
    share one `preprocessor_config.json` (their keys do not collide), so each can be read back
    with its own `from_pretrained`.
    """

    released_class = ""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        return _accept_numpy_video(self, argument_name, argument)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        merged = {**self.image_processor.to_dict(), **self.feature_extractor.to_dict()}
        merged["processor_class"] = self.released_class
        (folder / "preprocessor_config.json").write_text(
            json.dumps(merged, indent=2, sort_keys=True, default=str)
        )
        self.video_processor.save_pretrained(folder)


class OmniProcessor(_SavesOnePreprocessorConfig, Qwen2_5OmniProcessor):
    """`Qwen2_5OmniProcessor` that accepts the numpy video processor."""

    released_class = "Qwen2_5OmniProcessor"


class Omni3Processor(_SavesOnePreprocessorConfig, Qwen3OmniMoeProcessor):
    """`Qwen3OmniMoeProcessor` that accepts the numpy video processor."""

    released_class = "Qwen3OmniMoeProcessor"


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


def _check_budget(max_pixels: int, factor: int = 28) -> None:
    if max_pixels < factor * factor:
        raise ValueError(
            f"max_pixels must be at least {factor * factor} (one {factor}x{factor} merge group), got {max_pixels}"
        )


def _image_processor(max_pixels: int, video: NumpyVideoProcessor) -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": min(DEFAULT_MAX_PIXELS, max_pixels), "longest_edge": max_pixels},
        patch_size=video.patch_size,
        merge_size=video.merge_size,
        temporal_patch_size=video.temporal_patch_size,
        image_mean=video.image_mean.tolist(),
        image_std=video.image_std.tolist(),
    )


def _whisper() -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400
    )


def _assemble(kind: str, tokenizer: Any, image: Any, video: NumpyVideoProcessor, features: Any):
    if kind == "qwen2_5_omni":
        return OmniProcessor(
            image_processor=image, video_processor=video, feature_extractor=features, tokenizer=tokenizer
        )
    if kind == "qwen3_omni_moe":
        return Omni3Processor(
            image_processor=image, video_processor=video, feature_extractor=features, tokenizer=tokenizer
        )
    if kind == "qwen2_5_vl":
        return VLProcessor(image_processor=image, video_processor=video, tokenizer=tokenizer)
    raise ValueError(f"model kind {kind!r} has no processor (text only)")


def build_processor(
    tokenizer: Any, max_pixels: int, temporal_patch_size: int = 2, kind: str = "qwen2_5_omni"
):
    """Processor of `kind` with Qwen2.5 defaults: Whisper features (128 mel bins, 16 kHz), Qwen2-VL
    PIL images, numpy video (14 px patches, 2x2 merge, CLIP normalisation)."""
    _check_budget(max_pixels)
    video = NumpyVideoProcessor(
        max_pixels=max_pixels, min_pixels=28 * 28, temporal_patch_size=temporal_patch_size
    )
    return _assemble(kind, tokenizer, _image_processor(max_pixels, video), video, _whisper())


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def pixel_budget(checkpoint: int | None, params: int | None, source: str, where: str) -> int:
    """The video/image pixel budget: see the module docstring for which value wins."""
    if source not in ("params", "checkpoint"):
        raise ValueError(f"model.preprocessor must be 'params' or 'checkpoint', got {source!r}")
    if source == "checkpoint" and checkpoint is not None:
        if params is not None and params < checkpoint:
            log.warning(
                "%s: processor pixel budget %d from the checkpoint (model.preprocessor: checkpoint); "
                "clips are still decoded at data.media.max_pixels %d, which bounds it",
                where,
                checkpoint,
                params,
            )
        else:
            log.info("%s: processor pixel budget %d from the checkpoint", where, checkpoint)
        return checkpoint
    if params is None:
        return checkpoint if checkpoint is not None else DEFAULT_MAX_PIXELS
    if checkpoint is not None and checkpoint != params:
        log.warning(
            "%s: the checkpoint's processor says max_pixels %d; using data.media.max_pixels %d from "
            "params.yaml (model.preprocessor: params; set it to 'checkpoint' to use the checkpoint's)",
            where,
            checkpoint,
            params,
        )
    return params


def load_processor(
    folder: str | Path,
    tokenizer: Any,
    max_pixels: int | None = None,
    kind: str = "qwen2_5_omni",
    source: str = "params",
):
    """Rebuild the processor of a checkpoint folder around `tokenizer` (no torchvision needed).

    Reads preprocessor_config.json (the image processor's and, for Omni kinds, the Whisper
    feature extractor's settings) and video_preprocessor_config.json when present; the pixel
    budget follows `pixel_budget`. Missing files give the Qwen2.5 defaults of `build_processor`.
    """
    folder = Path(folder)
    saved = _read_json(folder / "preprocessor_config.json")
    video_saved = _read_json(folder / VIDEO_CONFIG_NAME)
    video = NumpyVideoProcessor.from_dict({**saved, **video_saved})
    has_budget = any("max_pixels" in d or isinstance(d.get("size"), dict) for d in (saved, video_saved) if d)
    budget = pixel_budget(video.max_pixels if has_budget else None, max_pixels, source, str(folder))
    _check_budget(budget, video.factor)
    video.max_pixels = budget
    video.min_pixels = min(video.min_pixels, budget)
    image = _image_processor(budget, video)
    features = WhisperFeatureExtractor.from_pretrained(folder) if "feature_size" in saved else _whisper()
    return _assemble(kind, tokenizer, image, video, features)
