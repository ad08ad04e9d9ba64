"""R_judge with a VLM run in this process: frames + question + the completion's reasoning -> JSON scores.

The paper's judge is a frozen InternVL3-2B shown 8 frames. `TransformersJudge` loads it in the
native transformers layout (`avatar_core.models.internvl`) and shows it the configured number of
frames as images ("Frame1: <image> Frame2: <image> ..." as in InternVL's video recipe), with its
own processor and chat template. Qwen2.5-VL and Qwen2.5-Omni judges load through the policy
loader and see the frames as a video (Omni also hears the clip). The judge is asked to rate the
reasoning as JSON ({"perception": 0-5, "reasoning": 0-5}), decodes greedily, and the scores are
averaged into [0, 1] by `parse_judge_scores` (an unparsable answer scores 0).

InternVL's original release (model_type `internvl_chat`) runs code from its repository: it loads
only with `trust_remote_code=True` (params.yaml: `reward_options.judge_trust_remote_code`) and is
then driven through the release's own `chat()` API (`avatar_core.models.judge_remote`).

Departures from the paper: the judge also sees the sample's verifiable facts (when the data set
has them) as a reference; an Omni judge hears the audio; frames are shown as single tiles
(`crop_to_patches=False`), as InternVL's own video recipe does.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatar_core.data.media import load_clip, load_frames, resolve_media_path
from avatar_core.models.internvl import InternVLBundle, is_internvl_native, load_internvl
from avatar_core.models.loading import PolicyBundle, load_policy
from avatar_core.rewards.judge import parse_judge_scores
from avatar_core.rewards.parsing import parse_completion

JUDGE_INSTRUCTION = (
    "You are a strict judge of reasoning about a video with sound. Rate the reasoning below for "
    "perception (does it describe what is seen and heard correctly?) and reasoning (is it "
    "coherent and does it lead to its answer?), each from 0 to 5. Reply with JSON only, e.g. "
    '{"perception": 3, "reasoning": 4}.'
)
PROMPT_VERSION = hashlib.sha256(JUDGE_INSTRUCTION.encode()).hexdigest()[:12]
REMOTE_CODE_TYPES = ("internvl_chat",)


def judge_text(completion: str, facts: str, question: str) -> str:
    """The user text after the frames: question, the reasoning to rate, the reference facts."""
    parsed = parse_completion(completion)
    reasoning = parsed.think if parsed.think else completion
    text = f"Question: {question}\nReasoning to rate: {reasoning}\n"
    try:
        fact_dict = json.loads(facts) if facts else {}
    except json.JSONDecodeError:
        fact_dict = {}
    if isinstance(fact_dict, dict) and fact_dict:
        text += f"Reference facts about the clip: {json.dumps(fact_dict, sort_keys=True)}\n"
    return text + "Scores as JSON:"


def frame_messages(text: str, n_images: int) -> list[dict[str, Any]]:
    """Chat messages with `n_images` frames as numbered image items before `text` (InternVL style).

    The served judge sends the same messages with each image item replaced by a data URL, so a
    served and an in-process copy of one model see the same prompt.
    """
    content: list[dict[str, Any]] = []
    for index in range(n_images):
        content += [{"type": "text", "text": f"Frame{index + 1}: "}, {"type": "image"}]
    content.append({"type": "text", "text": text})
    return [{"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": content}]


def _video_messages(text: str, with_video: bool) -> list[dict[str, Any]]:
    """Chat messages of a Qwen judge: the frames as one video item before `text`."""
    content: list[dict[str, Any]] = [{"type": "video"}] if with_video else []
    content.append({"type": "text", "text": text})
    return [{"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": content}]


class JudgeFrames:
    """Frames a judge is shown: `n_frames` sampled uniformly, fit into `max_pixels`, decoded once.

    `blank=True` gives black frames of the same shape: the control of the judge honesty check.
    With `with_audio` the whole clip is decoded (frames and audio) for judges that hear.
    """

    def __init__(
        self,
        media_root: str | Path | None,
        n_frames: int,
        max_pixels: int,
        *,
        blank: bool = False,
        with_audio: bool = False,
        keep: int = 256,
    ) -> None:
        if n_frames < 1 or max_pixels < 28 * 28:
            raise ValueError(f"need n_frames >= 1 and max_pixels >= 784, got {n_frames} and {max_pixels}")
        self.media_root = Path(media_root) if media_root else None
        self.n_frames = n_frames
        self.max_pixels = max_pixels
        self.blank = blank
        self.with_audio = with_audio
        self._keep = keep
        self._decoded: OrderedDict[str, Any] = OrderedDict()

    def path(self, video: str) -> Path:
        return resolve_media_path(self.media_root, video) if self.media_root else Path(video)

    def clip(self, video: str) -> Any:
        """The decoded clip (frames [T, H, W, 3] uint8 + audio) or None for a text-only sample."""
        if not video:
            return None
        if video not in self._decoded:
            path = self.path(video)
            if self.with_audio:
                clip = load_clip(path, n_frames=self.n_frames, max_pixels=self.max_pixels)
            else:
                clip = _FramesOnly(load_frames(path, self.n_frames, self.max_pixels))
            if self.blank:
                clip = copy.copy(clip)
                clip.frames = np.zeros_like(clip.frames)
                if hasattr(clip, "audio"):
                    clip.audio = np.zeros_like(clip.audio)
            self._decoded[video] = clip
            while len(self._decoded) > self._keep:  # bounded: the judge sees each prompt's clip G times
                self._decoded.popitem(last=False)
        self._decoded.move_to_end(video)
        return self._decoded[video]

    def frames(self, video: str) -> np.ndarray | None:
        clip = self.clip(video)
        return None if clip is None else clip.frames

    def blanked(self) -> JudgeFrames:
        return JudgeFrames(
            self.media_root, self.n_frames, self.max_pixels, blank=True, with_audio=self.with_audio
        )


class _FramesOnly:
    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames


def check_columns(completions: list[str], facts: list[str], video: list[str], question: list[str]) -> None:
    lengths = {len(completions), len(facts), len(video), len(question)}
    if len(lengths) != 1:
        raise ValueError(
            f"judge columns differ in length: completions {len(completions)}, facts {len(facts)}, "
            f"video {len(video)}, question {len(question)}"
        )


def load_judge_model(
    name_or_path: str, *, trust_remote_code: bool = False, dtype: str = "float32"
) -> InternVLBundle | PolicyBundle | Any:
    """The judge model by name or folder: native InternVL, the remote-code release (opt-in), or a policy kind."""
    from avatar_core.models.loading import _read_config_json

    raw = _read_config_json(name_or_path)
    if is_internvl_native(raw):
        return load_internvl(name_or_path, dtype)
    if raw.get("model_type") in REMOTE_CODE_TYPES or "auto_map" in raw:
        if not trust_remote_code:
            raise ValueError(
                f"judge model {name_or_path!r} (model_type {raw.get('model_type')!r}) runs code from its "
                "repository; opt in with reward_options.judge_trust_remote_code: true if you trust it, or "
                "use the native transformers release (e.g. OpenGVLab/InternVL3-2B-hf), which needs no remote code"
            )
        from avatar_core.models.judge_remote import load_remote_internvl

        return load_remote_internvl(name_or_path, dtype)
    return load_policy(name_or_path, dtype=dtype, trust_remote_code=trust_remote_code)


class TransformersJudge:
    """A frozen VLM in this process that scores the reasoning of completions; see the module docstring."""

    def __init__(
        self,
        bundle_or_name: Any,
        n_frames: int = 8,
        max_new_tokens: int = 64,
        media_root: str | None = None,
        *,
        trust_remote_code: bool = False,
        batch_size: int = 8,
        dtype: str = "float32",
        name: str | None = None,
    ) -> None:
        if n_frames < 1 or max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"n_frames, max_new_tokens and batch_size must be >= 1, got {n_frames}, {max_new_tokens}, {batch_size}"
            )
        self.name = name or (
            bundle_or_name if isinstance(bundle_or_name, str) else type(bundle_or_name).__name__
        )
        if isinstance(bundle_or_name, str):
            bundle_or_name = load_judge_model(
                bundle_or_name, trust_remote_code=trust_remote_code, dtype=dtype
            )
        self.bundle = bundle_or_name
        self.bundle.model.eval()
        self.n_frames = n_frames
        self.max_new_tokens = max_new_tokens
        self.media_root = media_root
        self.batch_size = batch_size
        self.frames = JudgeFrames(
            media_root,
            n_frames,
            self._max_pixels(),
            with_audio=getattr(self.bundle, "kind", "") == "qwen2_5_omni",
        )

    @property
    def family(self) -> str:
        """internvl (frames as images), remote (the release's chat()), or the policy kind (frames as video)."""
        if isinstance(self.bundle, InternVLBundle):
            return "internvl"
        return getattr(self.bundle, "kind", "remote")

    @property
    def sees_video(self) -> bool:
        return self.family in ("internvl", "remote") or self.bundle.processor is not None

    @property
    def identity(self) -> str:
        """What the scores depend on: the model, frames, length budget and prompt (cache namespace)."""
        return f"inproc|{self.family}|{self.name}|frames={self.n_frames}|tokens={self.max_new_tokens}|prompt={PROMPT_VERSION}"

    def _max_pixels(self) -> int:
        if isinstance(self.bundle, InternVLBundle):
            return self.bundle.processor.tile_size**2
        tile = getattr(self.bundle, "tile_size", None)
        if tile:
            return int(tile) ** 2
        processor = getattr(self.bundle, "processor", None)
        video = getattr(processor, "video_processor", None)
        return int(getattr(video, "max_pixels", 56 * 56))

    def with_blank_frames(self) -> TransformersJudge:
        """The same judge (same model object) shown black frames: the honesty-check control."""
        blank = copy.copy(self)
        blank.frames = self.frames.blanked()
        return blank

    def build_messages(
        self, completion: str, facts: str, question: str, with_video: bool
    ) -> list[dict[str, Any]]:
        """The judge prompt of a Qwen judge (frames as one video item) for one completion."""
        return _video_messages(judge_text(completion, facts, question), with_video)

    def _clip(self, video: str) -> Any:
        return self.frames.clip(video) if self.sees_video else None

    @torch.no_grad()
    def raw_answers(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[str]:
        """The judge's generated text for each completion (greedy)."""
        check_columns(completions, facts, video, question)
        answers: list[str] = []
        for start in range(0, len(completions), self.batch_size):
            stop = start + self.batch_size
            texts = [
                judge_text(c, f, q)
                for c, f, q in zip(
                    completions[start:stop], facts[start:stop], question[start:stop], strict=True
                )
            ]
            clips = [self._clip(v) for v in video[start:stop]]
            frames = [[] if c is None else list(c.frames) for c in clips]
            if self.family == "internvl":
                chats = [frame_messages(t, len(f)) for t, f in zip(texts, frames, strict=True)]
                answers += internvl_generate(self.bundle, chats, frames, self.max_new_tokens)
            elif self.family == "remote":
                answers += self.bundle.judge(JUDGE_INSTRUCTION, texts, frames, self.max_new_tokens)
            else:
                answers += self._qwen_answers(texts, clips)
        return answers

    def _qwen_answers(self, texts: list[str], clips: list[Any]) -> list[str]:
        from avatar_core.models.generation import generate_rollouts
        from avatar_core.models.inputs import encode_prompts

        messages = [_video_messages(text, clip is not None) for text, clip in zip(texts, clips, strict=True)]
        inputs = encode_prompts(self.bundle, messages, clips)
        rollouts = generate_rollouts(
            self.bundle, inputs, group_size=1, max_new_tokens=self.max_new_tokens, greedy=True
        )
        return rollouts.texts

    def score(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[float]:
        """Scores in [0, 1], one per completion; an unparsable judge answer scores 0."""
        answers = self.raw_answers(completions, facts=facts, video=video, question=question)
        return [parse_judge_scores(answer) for answer in answers]


@torch.no_grad()
def internvl_generate(
    bundle: InternVLBundle,
    messages: list[list[dict[str, Any]]],
    images: list[list[np.ndarray]],
    max_new_tokens: int,
    temperature: float = 0.0,
) -> list[str]:
    """Greedy (temperature 0) or sampled answers of an InternVL model, one per chat.

    The image items of chat k, in order, take images[k] ([H, W, 3] uint8 frames, one tile each).
    Each chat is processed on its own and the rows are left-padded into one batch.
    """
    processor = bundle.processor
    tokenizer = processor.tokenizer
    rows = []
    for chat, chat_images in zip(messages, images, strict=True):
        prompt = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        if chat_images:
            row = processor(
                text=[prompt],
                images=list(chat_images),
                images_kwargs={"crop_to_patches": False},
                return_tensors="pt",
            )
        else:
            row = processor(text=[prompt], return_tensors="pt")
        rows.append(row)
    length = max(r["input_ids"].shape[1] for r in rows)
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)  # [B, P]
    mask = torch.zeros((len(rows), length), dtype=torch.long)  # [B, P]
    for i, r in enumerate(rows):
        n = r["input_ids"].shape[1]
        ids[i, length - n :] = r["input_ids"][0]
        mask[i, length - n :] = r["attention_mask"][0]
    model = bundle.model
    device = next(model.parameters()).device
    batch: dict[str, Any] = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    pixels = [r["pixel_values"] for r in rows if "pixel_values" in r]
    if pixels:
        batch["pixel_values"] = torch.cat(pixels).to(
            device=device, dtype=model.dtype
        )  # [frames, 3, tile, tile]
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    out = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        **sampling,
    )  # [B, P + new]
    return tokenizer.batch_decode(out[:, length:], skip_special_tokens=True)
