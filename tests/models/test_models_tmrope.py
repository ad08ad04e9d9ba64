"""TMRoPE alignment: a sampled frame's video tokens sit at the temporal position of the audio tokens
of the same instant (25 positions per second), given the frame times the decoder reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models_helpers import CORPUS, make_clip, video_messages

from avatar_core.config import TinyModelConfig
from avatar_core.data.media import load_clip
from avatar_core.data.mp4 import write_mp4
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.loading import build_tiny_policy


@pytest.fixture(scope="module")
def one_frame_per_token():
    return build_tiny_policy(TinyModelConfig(temporal_patch_size=1), CORPUS, seed=0)


def _video_and_audio_times(bundle, batch) -> tuple[list[int], list[int]]:
    """Temporal position of the first token of each video frame, and of every audio token."""
    model = bundle.model
    positions, _ = model.get_rope_index(
        batch["input_ids"],
        video_grid_thw=batch["video_grid_thw"],
        attention_mask=batch["attention_mask"],
        use_audio_in_video=True,
        audio_seqlens=batch["feature_attention_mask"].sum(-1),
        second_per_grids=batch["video_second_per_grid"],
    )  # [3, 1, S]
    ids = batch["input_ids"][0]
    temporal = positions[0, 0]  # [S]
    video = temporal[ids == bundle.tokenizer.video_token_id]  # [frames * tokens per frame]
    audio = temporal[ids == bundle.tokenizer.audio_token_id]  # [audio tokens]
    per_frame = int(batch["video_grid_thw"][0, 1] * batch["video_grid_thw"][0, 2]) // 4
    base = int(audio[0])
    return [int(v) - base for v in video[::per_frame]], [int(a) - base for a in audio]


def test_sampled_frames_line_up_with_the_audio_of_their_instant(one_frame_per_token):
    clip = make_clip(n_frames=4, size=56, seconds=2.0)
    clip.frame_times = np.array([0.0, 0.625, 1.25, 1.875])  # frames 0, 5, 10, 15 of a 16-frame 8 fps clip
    batch = encode_prompts(one_frame_per_token, [video_messages()], [clip])
    video, audio = _video_and_audio_times(one_frame_per_token, batch)
    assert audio == list(range(50))  # 2 s of audio: one token per 40 ms
    assert video == [int(25 * t) for t in clip.frame_times] == [0, 15, 31, 46]


def test_without_frame_times_frames_are_spread_over_the_duration(one_frame_per_token):
    clip = make_clip(n_frames=4, size=56, seconds=2.0)
    batch = encode_prompts(one_frame_per_token, [video_messages()], [clip])
    assert _video_and_audio_times(one_frame_per_token, batch)[0] == [0, 12, 25, 37]


def test_decoded_clips_carry_the_times_of_their_sampled_frames(tmp_path, one_frame_per_token):
    frames = np.zeros((16, 56, 56, 3), np.uint8)
    path = tmp_path / "clip.mp4"
    write_mp4(path, frames, np.zeros(32000, np.float32), fps=8, sample_rate=16000)
    clip = load_clip(path, n_frames=4, max_pixels=56 * 56)
    np.testing.assert_allclose(clip.frame_times, [0.0, 0.625, 1.25, 1.875])
    batch = encode_prompts(one_frame_per_token, [video_messages()], [clip])
    assert torch.allclose(batch["video_second_per_grid"].float(), torch.tensor([0.625]))
    assert _video_and_audio_times(one_frame_per_token, batch)[0] == [0, 15, 31, 46]
