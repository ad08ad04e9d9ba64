"""Judge score parsing, the rule-based judge and the judge reward wrapper."""

from __future__ import annotations

import json

import pytest

from avatar_core.rewards.functions import make_judge_reward
from avatar_core.rewards.judge import Judge, RuleJudge, parse_judge_scores


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"perception": 4, "reasoning": 5}', 0.9),
        ('Sure! Here are my scores:\n```json\n{"perception": 3, "reasoning": 2}\n```\nDone.', 0.5),
        ('{"scores": [5, 5, 0]}', 2 / 3),
        ('{"scores": {"a": 1, "b": 4}}', 0.5),
        ('{"scores": 4}', 0.8),
        ('{"reasoning": 7, "scale": 10}', 0.7),
        ('{"reasoning": 1, "perception": 0.5, "scale": "0-1"}', 0.75),
        ('{"reasoning": "4", "comment": "clear and correct"}', 0.8),
        ('{"reasoning": 9, "perception": 5}', 1.0),  # 9 on a 0-5 scale clipped to 5
        ('{"reasoning": -3, "perception": 5}', 0.5),  # negative clipped to 0
        ('{"scores": [12, 10], "max_score": 10}', 1.0),
        ('{"verdict": {"perception": 5, "reasoning": 3}}', 0.8),  # nested object
        ('{"note": "none"} then {"reasoning": 5}', 1.0),  # the first object with scores counts
        ('{"reasoning": NaN, "perception": 5}', 1.0),  # non-finite scores are skipped
    ],
)
def test_parse_judge_scores(text: str, score: float) -> None:
    assert parse_judge_scores(text) == pytest.approx(score)


@pytest.mark.parametrize(
    "text",
    ["", "The reasoning is good, 4/5.", "{not json}", '{"perception": "good"}', "[4, 5]", '{"a": true}', "{"],
)
def test_parse_judge_scores_unparsable_is_zero(text: str) -> None:
    assert parse_judge_scores(text) == 0.0


FACTS = json.dumps({"count": 3, "colour": "red", "position": "left"})


def rule(completions: list[str], facts: list[str]) -> list[float | None]:
    n = len(completions)
    return RuleJudge().score(completions, facts=facts, video=[""] * n, question=["q"] * n)


def test_rule_judge_share_of_facts_stated() -> None:
    completions = [
        "<think>Three beeps come from the Red ball on the LEFT.</think><answer>3</answer>",
        "<think>I hear 3.0 beeps from the red ball on the right.</think><answer>3</answer>",
        "<think>4 beeps, a blue ball.</think><answer>4</answer>",
        "<think>reddish, leftover, 33 beeps</think><answer>3</answer>",  # whole words and whole numbers only
    ]
    assert rule(completions, [FACTS] * 4) == [1.0, pytest.approx(2 / 3), 0.0, 0.0]


def test_rule_judge_reads_only_the_think_part() -> None:
    assert rule(["<think>I am not sure.</think><answer>3, red, left</answer>"], [FACTS]) == [0.0]


def test_rule_judge_malformed_completion_scores_zero() -> None:
    completions = ["3 red left", "Sure <think>3 red left</think><answer>3</answer>"]
    assert rule(completions, [FACTS] * 2) == [0.0, 0.0]


def test_rule_judge_without_facts_does_not_apply() -> None:
    completion = "<think>3 red left</think><answer>3</answer>"
    assert rule([completion] * 2, ["{}", ""]) == [None, None]


def test_rule_judge_phrases_lists_and_negative_numbers() -> None:
    facts = json.dumps({"colours": ["red", "light blue"], "offset": -2})
    good = "<think>The red and Light Blue boxes, offset -2.</think><answer>A</answer>"
    half = "<think>The red box, offset 2.</think><answer>A</answer>"
    assert rule([good, half], [facts] * 2) == [1.0, 0.0]


def test_rule_judge_bad_facts_name_the_index() -> None:
    with pytest.raises(ValueError, match=r"facts\[1\] is not JSON: 'count=3'"):
        rule(["<think>a</think><answer>b</answer>"] * 2, [FACTS, "count=3"])
    with pytest.raises(ValueError, match=r"facts\[0\] must be a JSON object, got '\[3\]'"):
        rule(["<think>a</think><answer>b</answer>"], ["[3]"])


def test_rule_judge_is_a_judge() -> None:
    assert isinstance(RuleJudge(), Judge)


class FixedJudge:
    """A judge returning given scores, to test the wrapper's contract checks."""

    def __init__(self, scores: list[float | None]) -> None:
        self.scores = scores
        self.seen: dict[str, list[str]] = {}

    def score(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[float | None]:
        self.seen = {"completions": completions, "facts": facts, "video": video, "question": question}
        return self.scores


def test_judge_reward_passes_the_columns_and_returns_scores() -> None:
    judge = FixedJudge([0.25, None])
    reward = make_judge_reward(judge)
    chat = [{"role": "assistant", "content": "c2"}]
    out = reward(
        ["c1", chat], facts=["{}", "{}"], video=["a.mp4", "b.mp4"], question=["q1", "q2"], answer=["A", "B"]
    )
    assert out == [0.25, None]
    assert judge.seen == {
        "completions": ["c1", "c2"],
        "facts": ["{}", "{}"],
        "video": ["a.mp4", "b.mp4"],
        "question": ["q1", "q2"],
    }


def test_judge_reward_rejects_contract_violations() -> None:
    columns = {"facts": ["{}"], "video": [""], "question": ["q"]}
    with pytest.raises(ValueError, match=r"judge FixedJudge returned score 1.5 at index 0, outside \[0, 1\]"):
        make_judge_reward(FixedJudge([1.5]))(["c"], **columns)
    with pytest.raises(ValueError, match="judge FixedJudge returned 2 scores for 1 completions"):
        make_judge_reward(FixedJudge([0.1, 0.2]))(["c"], **columns)
    with pytest.raises(ValueError, match="reward 'judge' needs the column 'facts'"):
        make_judge_reward(FixedJudge([0.1]))(["c"], video=[""], question=["q"])
