"""Greedy answers and their scores: the one metric `avatar evaluate`, the ablation study and the
lm-eval tasks share.

An answer is correct when the parsed `<answer>` of the completion matches the option letter
(multiple choice) or equals the number (numeric: relative error below 1e-3, the binary form).
Accuracy is reported with percentile-bootstrap intervals overall and per task family.

Controls: every evaluation can be repeated with parts of the media blanked (`CONTROLS`): black
frames and silence (`blank_media`: nothing left but the question text), black frames only
(`blank_video`), silence only (`blank_audio`). A family that needs a modality must drop to its
blank level when that modality is blanked; that is how a model is shown to see or to hear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import torch
from tqdm.auto import tqdm

from avatar_core.data.media import BLANKING, Clip
from avatar_core.data.schema import Sample, render_messages
from avatar_core.evaluation.stats import bootstrap_accuracy
from avatar_core.rewards import accuracy_reward

CONTROLS = BLANKING  # control name -> (blank the video, blank the audio)


class ClipSource(Protocol):
    """Anything that hands out the decoded clip of each sample (None for text-only samples); a
    source that also has `prefetch(samples)` (the clip loader) is told the next batch ahead."""

    def get_many(self, samples: list[Sample]) -> list[Clip | None]: ...


def score_answers(texts: Sequence[str], samples: Sequence[Sample]) -> list[float]:
    """1.0 for a correct final answer, else 0.0."""
    values = accuracy_reward(
        list(texts),
        answer=[s.answer for s in samples],
        answer_type=[s.answer_type for s in samples],
        choices=[list(s.choices) for s in samples],
        numeric_mode="binary",
        numeric_tol=1e-3,
    )
    return [float(v or 0.0) for v in values]


def summarise(scores: Sequence[float], samples: Sequence[Sample], n_boot: int, confidence: float) -> dict:
    """Accuracy with its interval overall and under `per_task` for every task family."""
    overall = bootstrap_accuracy(list(scores), n_boot, confidence).as_dict()
    by_task: dict[str, list[float]] = defaultdict(list)
    for s, v in zip(samples, scores, strict=True):
        by_task[s.task].append(v)
    overall["per_task"] = {
        t: bootstrap_accuracy(v, n_boot, confidence).as_dict() for t, v in sorted(by_task.items())
    }
    return overall


@torch.no_grad()
def greedy_answers(
    bundle,
    samples: list[Sample],
    clips: ClipSource,
    max_new_tokens: int,
    batch_size: int,
    desc: str = "evaluate",
    progress: bool = True,
) -> list[str]:
    """The policy's greedy completion of every sample, in order, in batches of `batch_size`."""
    from avatar_core.models.generation import generate_rollouts
    from avatar_core.models.inputs import encode_prompts

    was_training = bundle.model.training
    bundle.model.eval()
    prefetch = getattr(clips, "prefetch", None)
    texts: list[str] = []
    for i in tqdm(range(0, len(samples), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = samples[i : i + batch_size]
        if prefetch is not None:  # read the next batch while this one generates
            prefetch(samples[i + batch_size : i + 2 * batch_size])
        inputs = encode_prompts(bundle, [render_messages(s) for s in chunk], clips.get_many(chunk))
        out = generate_rollouts(bundle, inputs, group_size=1, max_new_tokens=max_new_tokens, greedy=True)
        texts += out.texts
    bundle.model.train(was_training)
    return texts
