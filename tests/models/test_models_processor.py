"""The torchvision-free processor: Qwen2-VL patch layout and Omni outputs for video with audio."""

from __future__ import annotations

import numpy as np
import pytest
from models_helpers import CORPUS, make_clip, video_messages

from avatar_core.models.inputs import encode_prompts
from avatar_core.models.processor import (
    CLIP_MEAN,
    CLIP_STD,
    NumpyVideoProcessor,
    build_processor,
    load_processor,
)
from avatar_core.models.tokenizer import train_tokenizer


def reference_patches(frames: np.ndarray, p: int = 14, m: int = 2, tp: int = 2) -> np.ndarray:
    """Patch rows built one by one in the Qwen2-VL order: t, merge block row/col, in-block row/col."""
    x = (frames.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD  # [T, H, W, C]
    if len(x) % tp:
        x = np.concatenate([x, np.repeat(x[-1:], tp - len(x) % tp, axis=0)])
    T, H, W, C = x.shape
    rows = []
    for t in range(T // tp):
        for bh in range(H // p // m):
            for bw in range(W // p // m):
                for ih in range(m):
                    for iw in range(m):
                        h0, w0 = (bh * m + ih) * p, (bw * m + iw) * p
                        patch = x[t * tp : (t + 1) * tp, h0 : h0 + p, w0 : w0 + p, :]  # [tp, p, p, C]
                        rows.append(patch.transpose(3, 0, 1, 2).reshape(-1))  # C, tp, p, p
    return np.stack(rows)


@pytest.mark.parametrize("shape", [(4, 56, 56), (3, 56, 84), (2, 28, 112)])
def test_patch_layout_matches_reference(shape) -> None:
    frames = np.random.default_rng(1).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    patches, grid = NumpyVideoProcessor(max_pixels=112 * 112).patchify(frames)
    T, H, W = shape
    assert grid == [(T + 1) // 2, H // 14, W // 14]
    np.testing.assert_allclose(patches, reference_patches(frames), rtol=0, atol=1e-6)


def test_frames_are_resized_into_the_pixel_budget() -> None:
    frames = np.zeros((2, 100, 130, 3), np.uint8)
    _, grid = NumpyVideoProcessor(max_pixels=56 * 56).patchify(frames)
    assert grid[1] % 2 == 0 and grid[2] % 2 == 0
    assert grid[1] * 14 * grid[2] * 14 <= 56 * 56


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((56, 56, 3), np.uint8), r"\[T, H, W, 3\], got \[56, 56, 3\]"),
        (np.zeros((2, 56, 56, 3), np.float32), "uint8, got float32"),
    ],
)
def test_bad_frames_are_named(frames, message) -> None:
    with pytest.raises(ValueError, match=message):
        NumpyVideoProcessor().patchify(frames)


def test_omni_outputs_for_a_clip_with_video_and_audio(tiny_bundle) -> None:
    clip = make_clip(n_frames=4, size=56, seconds=2.0)
    batch = encode_prompts(tiny_bundle, [video_messages()], [clip])
    tok = tiny_bundle.tokenizer
    ids = batch["input_ids"][0].tolist()
    # 4 frames -> 2 temporal patches; 56 px -> 4x4 patches -> 2x2 merged tokens per temporal patch.
    assert batch["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert batch["pixel_values_videos"].shape == (2 * 4 * 4, 3 * 2 * 14 * 14)
    assert ids.count(tok.video_token_id) == 2 * 4 * 4 // 4
    # 2 s at 16 kHz -> 200 mel frames -> 100 after the conv stride -> 50 audio tokens.
    assert batch["input_features"].shape == (1, 128, 200)
    assert batch["feature_attention_mask"].sum().item() == 200
    assert ids.count(tok.audio_token_id) == 50
    # Audio in video: one audio segment opened inside the vision markers, video chunk first.
    start = ids.index(tok.convert_tokens_to_ids("<|vision_bos|>"))
    assert ids[start + 1] == tok.convert_tokens_to_ids("<|audio_bos|>")
    assert ids[start + 2] == tok.video_token_id
    assert batch["use_audio_in_video"] is True
    assert batch["video_second_per_grid"].tolist() == [1.0]  # 4 frames over 2 s: 2 fps, 2 frames per grid


def test_processor_save_and_load_round_trip(tmp_path) -> None:
    tokenizer = train_tokenizer(CORPUS, 600)
    processor = build_processor(tokenizer, 84 * 84)
    processor.save_pretrained(tmp_path)
    again = load_processor(tmp_path, tokenizer)
    assert again.video_processor.to_dict() == processor.video_processor.to_dict()
    assert again.feature_extractor.feature_size == 128
    audio = np.sin(np.arange(16000, dtype=np.float32) / 10)
    np.testing.assert_array_equal(
        again.feature_extractor(audio, sampling_rate=16000)["input_features"],
        processor.feature_extractor(audio, sampling_rate=16000)["input_features"],
    )


def test_too_small_pixel_budget_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"max_pixels must be at least 784 \(one 28x28 merge group\), got 100"
    ):
        build_processor(train_tokenizer(CORPUS, 400), 100)


@pytest.mark.parametrize(
    "n_samples, kind",
    [(32000, "bursts"), (32000, "silence"), (12345, "noise"), (16000 * 31, "bursts")],
)
def test_audio_features_equal_the_stock_30_second_padding(tiny_bundle, n_samples, kind) -> None:
    """encode_prompts pads audio to its own length plus one FFT window, not to 30 s: the features
    on every valid frame must equal what the stock processor computes with its 30 s padding."""
    rng = np.random.default_rng(n_samples)
    audio = np.zeros(n_samples, np.float32)
    if kind == "bursts":
        for start in range(0, n_samples - 4000, 8000):
            audio[start : start + 3000] = 0.5 * np.sin(np.arange(3000) / 3.0)
    elif kind == "noise":
        audio = rng.normal(0, 0.1, n_samples).astype(np.float32)
    clip = make_clip(n_frames=4, size=56, seconds=n_samples / 16000)
    clip.audio = audio
    ours = encode_prompts(tiny_bundle, [video_messages()], [clip])
    text = tiny_bundle.tokenizer.apply_chat_template(
        video_messages(), tokenize=False, add_generation_prompt=True
    )
    stock = tiny_bundle.processor(
        text=[text],
        videos=[clip.frames],
        audio=[audio],
        load_audio_from_video=True,
        audio_from_video_indices=[0],
        videos_kwargs={"fps": 4 / clip.duration_s},
        return_tensors="pt",
    )
    valid = int(stock["feature_attention_mask"].sum())
    assert ours["feature_attention_mask"].shape[-1] == valid == min(-(-n_samples // 160), 3000)
    np.testing.assert_array_equal(
        ours["input_features"].numpy(), stock["input_features"][..., :valid].numpy()
    )
    assert ours["input_ids"].tolist() == stock["input_ids"].tolist()
