"""Metric of the avatar_* lm-eval tasks: a task row back to a `Sample`, scored by `score_answers`.

lm-eval loads this file by path (`!function utils.process_results` in the task YAMLs), so it
imports the project by package name only.
"""

from __future__ import annotations

from typing import Any

from avatar_core.data.schema import RecordError, Sample

_REQUIRED = ("id", "answer", "answer_type")


def doc_to_sample(doc: dict[str, Any]) -> Sample:
    """The `Sample` an exported row stands for (question text and media are not needed to score)."""
    where = f"lm-eval row {doc.get('id', '?')!r}"
    missing = [k for k in _REQUIRED if doc.get(k) in (None, "")]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
    sample = Sample(
        id=str(doc["id"]),
        task=str(doc.get("task") or "unknown"),
        question=str(doc.get("prompt", "")),
        answer=str(doc["answer"]),
        answer_type=doc["answer_type"],
        choices=list(doc.get("choices") or []),
    )
    sample.validate(where)
    return sample


def doc_to_target(doc: dict[str, Any]) -> str:
    """The reference answer as text: the option letter or the number."""
    return str(doc["answer"])


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """`acc`: 1.0 when the `<answer>` of the generated text is correct (the `avatar evaluate` metric)."""
    from avatar_core.evaluation.scoring import score_answers

    if len(results) != 1 or not isinstance(results[0], str):
        raise ValueError(f"lm-eval row {doc.get('id', '?')!r}: expected one generated text, got {results!r}")
    return {"acc": score_answers([results[0]], [doc_to_sample(doc)])[0]}
