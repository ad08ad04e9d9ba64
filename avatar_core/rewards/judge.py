"""The judge interface, the parser of a judge's JSON scores, and the rule-based judge.

R_judge (DESIGN.md section 1) scores the *reasoning* of a completion. The paper uses a frozen VLM
(InternVL3-2B, 8 frames) that answers JSON scores; `avatar_core/models/judge.py` implements that
against this `Judge` protocol and uses `parse_judge_scores` on the generated text. Nothing here
loads a model.

`RuleJudge` is the verifiable judge for the synthetic data set: each sample carries a JSON object
of named facts (e.g. {"count": 3, "colour": "red", "position": "left"}) and the score is the
share of those facts stated in the completion's <think> part. This replaces the VLM judge on the
embedded default, where no judge model can be downloaded; it checks that the stated facts are
present, not that the reasoning around them is sound (a think part listing every number would
pass a count fact), which is why it is one weighted term next to accuracy, not the only reward.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from avatar_core.rewards.parsing import completion_text, numbers_in, parse_completion

# Keys that declare the scale of the scores instead of being a score.
_SCALE_KEYS = ("scale", "max_score", "max")
DEFAULT_SCALE = 5.0


@runtime_checkable
class Judge(Protocol):
    """Scores the reasoning of each completion in [0, 1]; None where the judge does not apply."""

    def score(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[float | None]: ...


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object embedded in `text`, in order of appearance."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            objects.append(value)
        position = text.find("{", end)
    return objects


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _declared_scale(obj: dict[str, Any]) -> float:
    for key in _SCALE_KEYS:
        if key not in obj:
            continue
        declared = obj[key]
        if isinstance(declared, str) and "-" in declared:  # "0-10"
            declared = declared.rsplit("-", 1)[1]
        number = _as_number(declared)
        if number is not None and number > 0:
            return number
    return DEFAULT_SCALE


def _raw_scores(obj: dict[str, Any]) -> list[float]:
    if "scores" in obj:
        scores = obj["scores"]
        items = (
            scores.values() if isinstance(scores, dict) else scores if isinstance(scores, list) else [scores]
        )
    else:
        items = [value for key, value in obj.items() if key not in _SCALE_KEYS]
    return [number for number in map(_as_number, items) if number is not None]


def judge_scores(text: str) -> float | None:
    """The averaged scores of a judge's answer in [0, 1], or None when it holds no JSON scores."""
    candidates = _json_objects(text)
    for obj in candidates:  # the list grows: nested objects are tried after their parent
        scores = _raw_scores(obj)
        if not scores:
            candidates.extend(value for value in obj.values() if isinstance(value, dict))
            continue
        scale = _declared_scale(obj)
        clipped = [min(max(score, 0.0), scale) for score in scores]
        return sum(clipped) / (len(clipped) * scale)
    return None


def parse_judge_scores(text: str) -> float:
    """Average the scores of the first JSON object in a judge's answer into [0, 1].

    The object holds named scores ({"perception": 4, "reasoning": 5}) or a list ({"scores": [..]}),
    on a 0-5 scale unless it declares another ({"scale": 10} or {"scale": "0-1"}). Each score is
    clipped to [0, scale] before averaging. No object or no numeric score: 0.0.

    >>> parse_judge_scores('Here you go: {"perception": 4, "reasoning": 5} Thanks.')
    0.9
    >>> parse_judge_scores('{"scores": [10, 5], "scale": 10}'), parse_judge_scores("four out of five")
    (0.75, 0.0)
    """
    score = judge_scores(text)
    return 0.0 if score is None else score


def _mentions(think: str, value: Any, numbers: set[float]) -> bool:
    """Whether the reasoning states `value`: numbers as numbers, words as case-insensitive whole words."""
    if isinstance(value, list):
        return bool(value) and all(_mentions(think, item, numbers) for item in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return any(math.isclose(float(value), n, rel_tol=1e-9, abs_tol=1e-9) for n in numbers)
    word = str(value).strip().casefold()
    if not word:
        return False
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", think.casefold()) is not None


class RuleJudge:
    """The verifiable judge: the share of a sample's facts stated correctly in the <think> part.

    >>> RuleJudge().score(
    ...     ["<think>I hear 3 beeps from the RED box.</think><answer>C</answer>", "<answer>C</answer>"],
    ...     facts=['{"count": 3, "colour": "red", "position": "left"}', '{"count": 3}'],
    ...     video=["a.mp4", "a.mp4"], question=["q", "q"])
    [0.6666666666666666, 0.0]
    """

    def score(
        self,
        completions: Sequence[Any],
        *,
        facts: Sequence[str],
        video: Sequence[str] | None = None,
        question: Sequence[str] | None = None,
    ) -> list[float | None]:
        if len(facts) != len(completions):
            raise ValueError(f"RuleJudge: {len(facts)} facts for {len(completions)} completions")
        scores: list[float | None] = []
        for index, (completion, fact_text) in enumerate(zip(completions, facts, strict=True)):
            sample_facts = self._facts(fact_text, index)
            if not sample_facts:
                scores.append(None)  # nothing verifiable: the judge does not apply
                continue
            parsed = parse_completion(completion_text(completion))
            if not parsed.well_formed or parsed.think is None:
                scores.append(0.0)
                continue
            numbers = set(numbers_in(parsed.think))
            stated = sum(_mentions(parsed.think, value, numbers) for value in sample_facts.values())
            scores.append(stated / len(sample_facts))
        return scores

    @staticmethod
    def _facts(fact_text: Any, index: int) -> dict[str, Any]:
        if isinstance(fact_text, dict):
            return fact_text
        try:
            value = json.loads(fact_text) if fact_text else {}
        except (TypeError, ValueError):
            raise ValueError(f"RuleJudge: facts[{index}] is not JSON: {fact_text!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"RuleJudge: facts[{index}] must be a JSON object, got {fact_text!r}")
        return value
