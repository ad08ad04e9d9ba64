"""Teacher-forced accuracy of each step of a reasoning trace: which step of a chain a model gets wrong.

Greedy accuracy says whether the final answer is right; it cannot say whether a model that fails
av_match miscounts the beeps, miscounts a square's flashes or compares wrongly, because the first
wrong step derails the rest. Here the model reads the correct trace (teacher forcing) and every
step is scored on its own: a step is right when the model's argmax at each of the step's tokens is
the trace's token there. Run with blanked media (the evaluation controls) this says which modality
each step uses: a step that needs the audio must fall to chance without it.

The steps are the checkable values of the synthetic traces (avatar_core/data/synthetic_tasks.py and
synthetic_sync.py), found by the patterns in `STEP_PATTERNS`; a trace of another data set is
scored on its answer only. `python scripts/probe_steps.py` runs this on a stage's checkpoint.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import torch

# step name -> pattern whose group 1 is the value the step states
STEP_PATTERNS: dict[str, str] = {
    "beeps": r"I hear (\d+) beeps",  # count_beeps, av_match, localise
    "square_flashes": r"The square flashes (\d+) times",  # count_flashes
    "colour_flashes": r"(?:red|green|blue) flashes (\d+)",  # each square's count in the sync traces
    "match": r"flashes \d+(, as many)",  # the comparison that stops the list
    "place": r"is at the ((?:top|bottom) (?:left|right))",  # localise's last step, locate's only one
    "answer": r"<answer>(.+?)</answer>",
}


def step_spans(trace: str) -> list[tuple[str, int, int]]:
    """(step, start, end) character spans of every step value in `trace`, in text order."""
    spans = [
        (name, m.start(1), m.end(1))
        for name, pattern in STEP_PATTERNS.items()
        for m in re.finditer(pattern, trace)
    ]
    return sorted(spans, key=lambda s: s[1])


def step_tokens(
    offsets: Sequence[tuple[int, int]], spans: list[tuple[str, int, int]]
) -> list[tuple[str, list[int]]]:
    """For each span, the indices of the tokens (character `offsets`) that overlap it; spans no
    token overlaps are left out."""
    out = []
    for name, start, end in spans:
        tokens = [i for i, (a, b) in enumerate(offsets) if b > start and a < end]
        if tokens:
            out.append((name, tokens))
    return out


def score_steps(
    predicted: torch.Tensor, target: torch.Tensor, steps: list[tuple[str, list[int]]]
) -> dict[str, tuple[int, int]]:
    """{step: (right, total)} for one trace: a step is right when predicted == target at all its
    tokens. `predicted`, `target`: [L] token ids (the prediction at i is for target token i)."""
    right = (predicted == target).tolist()  # [L]
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, tokens in steps:
        out[name][0] += int(all(right[i] for i in tokens))
        out[name][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def merge_counts(parts: list[dict[str, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for part in parts:
        for name, (right, n) in part.items():
            total[name][0] += right
            total[name][1] += n
    return {k: (v[0], v[1]) for k, v in sorted(total.items())}


@torch.no_grad()
def teacher_forced_steps(bundle, samples, clips, batch_size: int = 16) -> dict[str, tuple[int, int]]:
    """{step: (right, total)} over `samples` (each with a `reasoning` trace), the model reading
    each correct trace after its prompt and media from `clips`."""
    from avatar_core.data.schema import render_messages
    from avatar_core.models.generation import completion_logits, right_padded
    from avatar_core.models.inputs import encode_prompts

    tokenizer = bundle.tokenizer
    was_training = bundle.model.training
    bundle.model.eval()
    parts = []
    try:
        for i in range(0, len(samples), batch_size):
            batch = [s for s in samples[i : i + batch_size] if s.reasoning]
            if not batch:
                continue
            inputs = encode_prompts(bundle, [render_messages(s) for s in batch], clips.get_many(batch))
            encoded = [
                tokenizer(s.reasoning, add_special_tokens=False, return_offsets_mapping=True) for s in batch
            ]
            ids, mask = right_padded([e["input_ids"] for e in encoded], tokenizer.pad_token_id)  # [B, L]
            logits = completion_logits(bundle, inputs, ids, mask, torch.arange(len(batch)))  # [B, L, V]
            predicted = logits.argmax(-1).cpu()  # [B, L]
            for j, (s, e) in enumerate(zip(batch, encoded, strict=True)):
                n = len(e["input_ids"])
                steps = step_tokens(e["offset_mapping"], step_spans(s.reasoning))
                parts.append(score_steps(predicted[j, :n], ids[j, :n], steps))
    finally:
        bundle.model.train(was_training)
    return merge_counts(parts)
