"""The reward functions of DESIGN.md section 1: format, accuracy, self-consistency and judge.

Each is a plain callable like TRL's, `f(completions, **columns) -> list[float | None]`: columns
are lists aligned with `completions` and named after `Sample` fields; unknown columns (TRL also
passes `prompts`, `completion_ids`, `trainer_state`) are accepted and ignored.

Where this departs from the authors' released code: the numeric reward is dense by default
(1 - relative error, as the paper states); their binary rule (relative error < 1e-3) is
`numeric_mode="binary"`. The relative error divides by max(|gt|, 1e-6), so a ground truth of 0
is only matched by 0. Self-consistency compares answers after the same normalisation as
accuracy (option letter, number value), so "B" and "b. dog" vote together.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

from avatar_core.rewards.judge import Judge
from avatar_core.rewards.judge_cache import JudgeCache
from avatar_core.rewards.parsing import completion_text, normalise_choice, parse_completion, parse_number

RewardFn = Callable[..., list[float | None]]
NumericMode = Literal["dense", "binary"]
RELATIVE_EPS = 1e-6


def _column(name: str, values: Sequence[Any] | None, n: int, reward: str) -> Sequence[Any]:
    if values is None:
        raise ValueError(f"reward {reward!r} needs the column {name!r}")
    if len(values) != n:
        raise ValueError(f"reward {reward!r}: column {name!r} has {len(values)} values for {n} completions")
    return values


def _answer_key(completion: Any, answer_type: str, choices: Sequence[str], index: int) -> Hashable | None:
    """The normalised answer of one completion: an option letter, a number, or None."""
    answer = parse_completion(completion_text(completion)).answer
    if answer is None:
        return None
    if answer_type == "mc":
        return normalise_choice(answer, list(choices))
    if answer_type == "numeric":
        return parse_number(answer)
    raise ValueError(f"answer_type[{index}] must be 'mc' or 'numeric', got {answer_type!r}")


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 if the whole completion is <think>...</think><answer>...</answer>, else 0.0.

    >>> format_reward(["<think>2 beeps</think> <answer>2</answer>", "<think>2</think>2", "x <answer>2</answer>"])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if parse_completion(completion_text(c)).well_formed else 0.0 for c in completions]


def numeric_score(predicted: float, truth: float, mode: NumericMode = "dense", tol: float = 1e-3) -> float:
    """dense: 1 - min(relative error, 1); binary: 1 if relative error < tol else 0.

    >>> numeric_score(3.0, 4.0), numeric_score(3.0, 4.0, "binary"), numeric_score(0.0, 0.0)
    (0.75, 0.0, 1.0)
    """
    error = abs(predicted - truth) / max(abs(truth), RELATIVE_EPS)
    if mode == "dense":
        return 1.0 - min(error, 1.0)
    if mode == "binary":
        return 1.0 if error < tol else 0.0
    raise ValueError(f"numeric_mode must be 'dense' or 'binary', got {mode!r}")


def accuracy_reward(
    completions: Sequence[Any],
    *,
    answer: Sequence[str],
    answer_type: Sequence[str],
    choices: Sequence[Sequence[str]],
    numeric_mode: NumericMode = "dense",
    numeric_tol: float = 1e-3,
    **kwargs: Any,
) -> list[float | None]:
    """Multiple choice: 1.0 for the right option; numeric: dense or binary closeness; no answer: 0.0.

    >>> accuracy_reward(
    ...     ["<think>.</think><answer>(b)</answer>", "<think>.</think><answer>3 beeps</answer>", "B"],
    ...     answer=["B", "4", "B"], answer_type=["mc", "numeric", "mc"], choices=[["cat", "dog"], [], ["cat", "dog"]])
    [1.0, 0.75, 0.0]
    """
    n = len(completions)
    answer = _column("answer", answer, n, "accuracy")
    answer_type = _column("answer_type", answer_type, n, "accuracy")
    choices = _column("choices", choices, n, "accuracy")
    rewards: list[float | None] = []
    for index, completion in enumerate(completions):
        predicted = _answer_key(completion, answer_type[index], choices[index], index)
        if predicted is None:
            rewards.append(0.0)
        elif answer_type[index] == "mc":
            rewards.append(1.0 if predicted == str(answer[index]).strip().upper() else 0.0)
        else:
            try:
                truth = float(answer[index])
            except ValueError:
                raise ValueError(f"answer[{index}] is not a number: {answer[index]!r}") from None
            rewards.append(numeric_score(float(predicted), truth, numeric_mode, numeric_tol))  # type: ignore[arg-type]
    return rewards


def self_reward(
    completions: Sequence[Any],
    *,
    id: Sequence[str],  # the column is named after Sample.id, as TRL passes it
    answer_type: Sequence[str],
    choices: Sequence[Sequence[str]],
    **kwargs: Any,
) -> list[float | None]:
    """1.0 if a completion agrees with its group's majority answer (completions sharing an `id`).

    Unparsable or empty answers do not vote and score 0. A tie for the top (or no vote at all)
    gives no pseudo-label, and the whole group scores 0.

    >>> done = lambda a: f"<think>.</think><answer>{a}</answer>"
    >>> self_reward([done("A"), done("a."), done("B"), done("A"), done("B")], id=["p", "p", "p", "q", "q"],
    ...             answer_type=["mc"] * 5, choices=[["cat", "dog"]] * 5)
    [1.0, 1.0, 0.0, 0.0, 0.0]
    """
    n = len(completions)
    ids = _column("id", id, n, "self")
    answer_type = _column("answer_type", answer_type, n, "self")
    choices = _column("choices", choices, n, "self")
    keys = [_answer_key(c, answer_type[i], choices[i], i) for i, c in enumerate(completions)]

    votes: dict[str, Counter[Hashable]] = {}
    for prompt_id, key in zip(ids, keys, strict=True):
        votes.setdefault(prompt_id, Counter())
        if key is not None:
            votes[prompt_id][key] += 1
    labels: dict[str, Hashable | None] = {}
    for prompt_id, counter in votes.items():
        ranked = counter.most_common(2)
        tied = len(ranked) == 2 and ranked[0][1] == ranked[1][1]
        labels[prompt_id] = None if not ranked or tied else ranked[0][0]
    return [
        1.0 if key is not None and key == labels[prompt_id] else 0.0
        for prompt_id, key in zip(ids, keys, strict=True)
    ]


def make_judge_reward(judge: Judge, cache: JudgeCache | None = None) -> RewardFn:
    """Wrap a `Judge` as a reward callable that reads the `facts`, `video` and `question` columns.

    With a `JudgeCache` the scores go through it (keyed by the `id` column, which is then required):
    completions already scored are read from the cache and only the rest reach the judge.

    >>> from avatar_core.rewards.judge import RuleJudge
    >>> reward = make_judge_reward(RuleJudge())
    >>> reward(["<think>3 beeps</think><answer>3</answer>"], facts=['{"count": 3}'], video=[""], question=["q"])
    [1.0]
    """
    judge_name = type(judge).__name__

    def judge_reward(
        completions: Sequence[Any],
        *,
        facts: Sequence[str] | None = None,
        video: Sequence[str] | None = None,
        question: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        n = len(completions)
        columns = {
            "facts": list(_column("facts", facts, n, "judge")),
            "video": list(_column("video", video, n, "judge")),
            "question": list(_column("question", question, n, "judge")),
        }
        texts = [completion_text(c) for c in completions]
        if cache is None:
            scores = judge.score(texts, **columns)
        else:
            ids = [str(i) for i in _column("id", kwargs.get("id"), n, "judge")]
            scores = cache.score(judge, texts, ids=ids, **columns)
        if len(scores) != n:
            raise ValueError(f"judge {judge_name} returned {len(scores)} scores for {n} completions")
        for index, score in enumerate(scores):
            if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
                raise ValueError(
                    f"judge {judge_name} returned score {score!r} at index {index}, outside [0, 1]"
                )
        return list(scores)

    judge_reward.__name__ = f"judge_reward[{judge_name}]"
    return judge_reward
