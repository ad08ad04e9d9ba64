"""R_judge with a transformers VLM: frames + question + the completion's reasoning -> JSON scores.

The paper's judge is a frozen InternVL3-2B shown 8 frames. `TransformersJudge` prompts any policy
this package can load (Qwen2.5-Omni/VL with the frames as a video; a text-only causal LM without
them) to rate the reasoning as JSON ({"perception": 0-5, "reasoning": 0-5}), decodes greedily and
averages the scores into [0, 1] with `avatar_core.rewards.judge.parse_judge_scores` (an
unparsable answer scores 0). Departures: the judge also sees the sample's verifiable facts (when
the data set has them) as a reference, and with Qwen2.5-Omni it hears the clip's audio too.
InternVL's original release needs remote code: pass `trust_remote_code=True` to load it by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from avatar_core.data.media import load_clip, resolve_media_path
from avatar_core.models.generation import generate_rollouts
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.loading import PolicyBundle, load_policy
from avatar_core.rewards.judge import parse_judge_scores
from avatar_core.rewards.parsing import parse_completion

JUDGE_INSTRUCTION = (
    "You are a strict judge of reasoning about a video with sound. Rate the reasoning below for "
    "perception (does it describe what is seen and heard correctly?) and reasoning (is it "
    "coherent and does it lead to its answer?), each from 0 to 5. Reply with JSON only, e.g. "
    '{"perception": 3, "reasoning": 4}.'
)


class TransformersJudge:
    """A frozen VLM that scores the reasoning of completions; see the module docstring."""

    def __init__(
        self,
        bundle_or_name: PolicyBundle | str,
        n_frames: int = 8,
        max_new_tokens: int = 64,
        media_root: str | None = None,
        *,
        trust_remote_code: bool = False,
        batch_size: int = 8,
    ) -> None:
        if n_frames < 1 or max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"n_frames, max_new_tokens and batch_size must be >= 1, got {n_frames}, {max_new_tokens}, {batch_size}"
            )
        if isinstance(bundle_or_name, str):
            bundle_or_name = load_policy(bundle_or_name, trust_remote_code=trust_remote_code)
        self.bundle = bundle_or_name
        self.bundle.model.eval()
        self.n_frames = n_frames
        self.max_new_tokens = max_new_tokens
        self.media_root = media_root
        self.batch_size = batch_size

    @property
    def sees_video(self) -> bool:
        return self.bundle.processor is not None

    def build_messages(
        self, completion: str, facts: str, question: str, with_video: bool
    ) -> list[dict[str, Any]]:
        """The judge prompt for one completion: instruction, [video], question, reasoning, facts."""
        parsed = parse_completion(completion)
        reasoning = parsed.think if parsed.think else completion
        text = f"Question: {question}\nReasoning to rate: {reasoning}\n"
        try:
            fact_dict = json.loads(facts) if facts else {}
        except json.JSONDecodeError:
            fact_dict = {}
        if fact_dict:
            text += f"Reference facts about the clip: {json.dumps(fact_dict, sort_keys=True)}\n"
        text += "Scores as JSON:"
        content: list[dict[str, Any]] = [{"type": "video"}] if with_video else []
        content.append({"type": "text", "text": text})
        return [{"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": content}]

    def _clip(self, video: str) -> Any:
        if not video or not self.sees_video:
            return None
        path = resolve_media_path(self.media_root, video) if self.media_root else Path(video)
        max_pixels = getattr(self.bundle.processor.video_processor, "max_pixels", 56 * 56)
        return load_clip(path, n_frames=self.n_frames, max_pixels=max_pixels)

    @torch.no_grad()
    def raw_answers(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[str]:
        """The judge's generated text for each completion (greedy)."""
        lengths = {len(completions), len(facts), len(video), len(question)}
        if len(lengths) != 1:
            raise ValueError(
                f"judge columns differ in length: completions {len(completions)}, facts {len(facts)}, "
                f"video {len(video)}, question {len(question)}"
            )
        answers: list[str] = []
        for start in range(0, len(completions), self.batch_size):
            stop = start + self.batch_size
            clips = [self._clip(v) for v in video[start:stop]]
            messages = [
                self.build_messages(c, f, q, clip is not None)
                for c, f, q, clip in zip(
                    completions[start:stop], facts[start:stop], question[start:stop], clips, strict=True
                )
            ]
            inputs = encode_prompts(self.bundle, messages, clips)
            rollouts = generate_rollouts(
                self.bundle, inputs, group_size=1, max_new_tokens=self.max_new_tokens, greedy=True
            )
            answers.extend(rollouts.texts)
        return answers

    def score(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[float]:
        """Scores in [0, 1], one per completion; an unparsable judge answer scores 0."""
        answers = self.raw_answers(completions, facts=facts, video=video, question=question)
        return [parse_judge_scores(answer) for answer in answers]
