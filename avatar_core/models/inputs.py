"""Prompt encoding: chat messages + clips -> one left-padded model batch, and row selection.

Each prompt is run through the processor on its own, then the rows are collated. Per-prompt
processing lets every clip keep its own frame rate (the Omni processor takes one fps per call, and
the fps sets where audio chunks interleave with video chunks) and trims the Whisper features to
the clip's real length. The Whisper extractor pads every waveform to 30 s before its STFT; here it
pads only to the clip's length plus one FFT window (`_whisper_length`), which gives the same
features on every valid frame (the windows that reach past the end see the same zeros, and the
log-mel normalisation's maximum lies in the audio) at a tenth of the cost for short clips, and the
trim to the valid frames is exact because the model reads only the masked frames.

`select_rows(bundle, batch, index)` builds a batch whose row k is row index[k] of `batch`, with
video patches, grids and audio features repeated consistently: generation expands each prompt to
its group of G completions with it, and teacher forcing maps completions back to their prompts.

Per kind (models/kinds.py): the Omni kinds get video with its audio track (audio in video);
Qwen2.5-VL gets the frames only; a causal LM gets text only, its messages flattened to plain
strings first (Qwen2.5-Instruct's chat template concatenates `message.content` as a string).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature

SILENCE_SAMPLES = 16000  # a clip without audio is encoded with 1 s of silence at 16 kHz
_PER_VIDEO = ("video_grid_thw", "video_second_per_grid", "second_per_grid_ts")
_PER_AUDIO = ("input_features", "feature_attention_mask")
_FLAGS = ("use_audio_in_video",)
# Per-token tensors beside input_ids (Qwen2.5-VL marks media tokens for its 3-D positions).
PER_TOKEN = ("mm_token_type_ids",)


class ClipLike(Protocol):
    """What encoding needs from `avatar_core.data.media.Clip`."""

    frames: np.ndarray  # [T, H, W, 3] uint8
    audio: np.ndarray  # [N] float32 mono at 16 kHz


def _clip_audio(clip: ClipLike) -> np.ndarray:
    audio = getattr(clip, "audio", None)
    if audio is None or np.asarray(audio).size == 0:
        return np.zeros(SILENCE_SAMPLES, np.float32)
    return np.asarray(audio, dtype=np.float32)


def _whisper_length(extractor: Any, n_samples: int) -> int:
    """Samples to pad a waveform to: its length plus one FFT window, on the hop grid, at most 30 s."""
    hop, n_fft = int(extractor.hop_length), int(extractor.n_fft)
    padded = -(-(n_samples + n_fft) // hop) * hop
    return min(padded, int(extractor.n_samples))


def _frame_rate(clip: ClipLike, n_frames: int) -> float:
    """Rate of the sampled frames, as the processor needs it to place video tokens in time.

    Qwen2.5-Omni gives sampled frame k the temporal position k / fps * 25 (TMRoPE) and audio token
    j the position j (25 per second), so fps must be the rate at which the sampled frames actually
    follow each other. Uniform sampling takes the first and the last frame, so n frames span
    (n - 1) intervals over the times in `clip.frame_times`; frame count / duration would place the
    last of 4 frames of a 2 s clip at 1.5 s instead of 1.875 s, 9 audio tokens early.
    """
    times = getattr(clip, "frame_times", None)
    if times is not None and len(times) == n_frames and n_frames > 1 and float(times[-1] - times[0]) > 0:
        return (n_frames - 1) / float(times[-1] - times[0])
    duration = getattr(clip, "duration_s", None)
    if not duration:
        audio = getattr(clip, "audio", None)
        duration = len(audio) / 16000 if audio is not None and len(audio) else n_frames / 2.0
    return n_frames / float(duration)


def _has_video_item(messages: list[dict]) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(c.get("type") == "video" for c in m["content"])
        for m in messages
    )


def _as_text_messages(messages: list[dict], where: str) -> list[dict]:
    """Messages whose content is a plain string (text parts joined); media items are refused."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            media = [c.get("type") for c in content if c.get("type") != "text"]
            if media:
                raise ValueError(f"{where}: a text-only model cannot take {', '.join(media)} items")
            content = "".join(c.get("text", "") for c in content)
        out.append({**m, "content": content})
    return out


def _encode_one(bundle: Any, messages: list[dict], clip: ClipLike | None, where: str) -> BatchFeature:
    """One prompt -> a batch of one row (no padding)."""
    has_video_item = _has_video_item(messages)
    if clip is None and has_video_item:
        raise ValueError(f"{where}: the messages hold a video item but no clip was given")
    if clip is not None and not has_video_item:
        raise ValueError(f"{where}: a clip was given but the messages hold no video item")
    if bundle.processor is None:
        if clip is not None:
            raise ValueError(f"{where}: model kind {bundle.kind!r} is text only and cannot take a clip")
        text = bundle.tokenizer.apply_chat_template(
            _as_text_messages(messages, where), tokenize=False, add_generation_prompt=True
        )
        return BatchFeature(dict(bundle.tokenizer([text], return_tensors="pt", add_special_tokens=False)))
    text = bundle.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if clip is None:
        return bundle.processor(text=[text], return_tensors="pt")
    frames = np.asarray(clip.frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(
            f"{where}: clip frames must have shape [T, H, W, 3] with T > 0, got {list(frames.shape)}"
        )
    fps = _frame_rate(clip, frames.shape[0])
    if not bundle.media_tokens.audio:  # a video-only kind: the frames alone
        return bundle.processor(text=[text], videos=[frames], videos_kwargs={"fps": fps}, return_tensors="pt")
    audio = _clip_audio(clip)
    row = bundle.processor(
        text=[text],
        videos=[frames],
        audio=[audio],
        load_audio_from_video=True,
        audio_from_video_indices=[0],
        videos_kwargs={"fps": fps},
        audio_kwargs={"max_length": _whisper_length(bundle.processor.feature_extractor, len(audio))},
        return_tensors="pt",
    )
    valid = int(row["feature_attention_mask"].sum())
    row["input_features"] = row["input_features"][:, :, :valid]  # [1, mel, frames]
    row["feature_attention_mask"] = row["feature_attention_mask"][:, :valid]  # [1, frames]
    row["use_audio_in_video"] = True
    return row


def encode_prompts(
    bundle: Any, messages_list: list[list[dict]], clips: list[ClipLike | None]
) -> BatchFeature:
    """Left-padded batch of prompts; Omni prompts with a clip carry video with audio-in-video."""
    if len(messages_list) != len(clips):
        raise ValueError(f"encode_prompts: {len(messages_list)} message lists but {len(clips)} clips")
    if not messages_list:
        raise ValueError("encode_prompts: no prompts given")
    rows = [
        _encode_one(bundle, m, c, f"prompt {i}")
        for i, (m, c) in enumerate(zip(messages_list, clips, strict=True))
    ]
    return collate_rows(rows, bundle.tokenizer.pad_token_id)


def _pad_features(
    features: list[torch.Tensor], masks: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(f.shape[-1] for f in features)
    padded = [torch.nn.functional.pad(f, (0, width - f.shape[-1])) for f in features]  # each [A, mel, width]
    padded_masks = [torch.nn.functional.pad(m, (0, width - m.shape[-1])) for m in masks]  # each [A, width]
    return torch.cat(padded), torch.cat(padded_masks)


def collate_rows(rows: list[BatchFeature], pad_token_id: int) -> BatchFeature:
    """Stack single-row batches: left-pad ids and mask, concatenate media tensors in row order."""
    length = max(r["input_ids"].shape[1] for r in rows)
    ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)  # [B, P]
    mask = torch.zeros((len(rows), length), dtype=torch.long)  # [B, P]
    for i, r in enumerate(rows):
        n = r["input_ids"].shape[1]
        ids[i, length - n :] = r["input_ids"][0]
        mask[i, length - n :] = r["attention_mask"][0]
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    for key in PER_TOKEN:
        if any(key in r for r in rows):
            per_token = torch.zeros((len(rows), length), dtype=torch.long)  # [B, P]
            for i, r in enumerate(rows):
                n = r["input_ids"].shape[1]
                if key in r:
                    per_token[i, length - n :] = r[key][0]
            out[key] = per_token
    keys = {k for r in rows for k in r.keys()} - {"input_ids", "attention_mask", *PER_TOKEN}
    for key in sorted(keys):
        present = [r[key] for r in rows if key in r]
        if key in _FLAGS:
            out[key] = any(bool(v) for v in present)
        elif key == "input_features":
            masks = [r["feature_attention_mask"] for r in rows if key in r]
            out["input_features"], out["feature_attention_mask"] = _pad_features(present, masks)
        elif key == "feature_attention_mask":
            continue
        elif isinstance(present[0], torch.Tensor):
            out[key] = torch.cat(present)
        else:
            out[key] = [item for v in present for item in v]
    return BatchFeature(out)


def _media_counts(bundle: Any, ids: torch.Tensor) -> tuple[int, int, int]:
    """(images, videos, audios) referenced by one row of ids, counted from the marker tokens."""
    tok, names = bundle.tokenizer, bundle.media_tokens
    if not names.vision_start:
        return 0, 0, 0
    vision_bos = tok.convert_tokens_to_ids(names.vision_start)
    audio_bos = tok.convert_tokens_to_ids(names.audio_start) if names.audio_start else None
    image_id, video_id = tok.convert_tokens_to_ids(names.image), tok.convert_tokens_to_ids(names.video)
    seq = ids.tolist()
    images = videos = 0
    for j, token in enumerate(seq):
        if token != vision_bos:
            continue
        nxt = seq[j + 2] if j + 2 < len(seq) and seq[j + 1] == audio_bos else seq[min(j + 1, len(seq) - 1)]
        images += nxt == image_id
        videos += nxt == video_id
    audios = seq.count(audio_bos) if audio_bos is not None else 0
    return images, videos, audios


def split_rows(bundle: Any, batch: BatchFeature) -> list[BatchFeature]:
    """Inverse of `collate_rows`: one single-row batch per row (padding kept, media sliced)."""
    counts = [_media_counts(bundle, row_ids) for row_ids in batch["input_ids"]]
    image_patches = batch["image_grid_thw"].prod(-1).tolist() if "image_grid_thw" in batch else []
    video_patches = batch["video_grid_thw"].prod(-1).tolist() if "video_grid_thw" in batch else []
    rows: list[BatchFeature] = []
    img = vid = aud = img_patch = vid_patch = 0
    for i, (n_img, n_vid, n_aud) in enumerate(counts):
        row: dict[str, Any] = {
            "input_ids": batch["input_ids"][i : i + 1],
            "attention_mask": batch["attention_mask"][i : i + 1],
        }
        for key in PER_TOKEN:
            if key in batch:
                row[key] = batch[key][i : i + 1]
        if n_img:
            n = sum(image_patches[img : img + n_img])
            row["pixel_values"] = batch["pixel_values"][img_patch : img_patch + n]
            row["image_grid_thw"] = batch["image_grid_thw"][img : img + n_img]
            img, img_patch = img + n_img, img_patch + n
        if n_vid:
            n = sum(video_patches[vid : vid + n_vid])
            row["pixel_values_videos"] = batch["pixel_values_videos"][vid_patch : vid_patch + n]
            for key in _PER_VIDEO:
                if key in batch:
                    row[key] = batch[key][vid : vid + n_vid]
            vid, vid_patch = vid + n_vid, vid_patch + n
        if n_aud:
            for key in _PER_AUDIO:
                row[key] = batch[key][aud : aud + n_aud]
            aud += n_aud
        for key in _FLAGS:
            if key in batch:
                row[key] = batch[key]
        rows.append(BatchFeature(row))
    return rows


def select_rows(bundle: Any, batch: BatchFeature, index: torch.Tensor | list[int]) -> BatchFeature:
    """Batch whose row k is row index[k] of `batch` (repeats allowed), media repeated to match."""
    rows = split_rows(bundle, batch)
    picked = [rows[int(i)] for i in index]
    return collate_rows(picked, bundle.tokenizer.pad_token_id)
