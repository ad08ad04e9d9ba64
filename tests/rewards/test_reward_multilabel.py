"""Multi-label questions (IntentBench's emotions): the Sample, the parse, accuracy, votes and chance."""

from __future__ import annotations

import pytest

from avatar_core.data.schema import RecordError, Sample, format_question
from avatar_core.evaluation.stats import chance_level
from avatar_core.rewards.functions import accuracy_reward, self_reward
from avatar_core.rewards.parsing import normalise_choices

EMOTIONS = ["Joy", "Fear", "Surprise", "Disgust", "Sadness", "Anger"]


def done(answer: str) -> str:
    return f"<think>faces and voice</think><answer>{answer}</answer>"


def multi(answer: str) -> Sample:
    return Sample(
        id="ib/1",
        task="emer_ov_mc",
        question="Which emotions?",
        answer=answer,
        answer_type="multi",
        choices=EMOTIONS,
    )


def test_multi_label_sample_validates_its_letters() -> None:
    multi("B,E").validate()
    multi("b, e").validate()
    for bad in ("B,G", "B,B", "", ",", "BE"):
        with pytest.raises(RecordError, match="is not a comma-separated set of the option letters ABCDEF"):
            multi(bad).validate("rec")
    with pytest.raises(RecordError, match="answer_type must be one of mc, numeric, multi, got 'set'"):
        Sample(id="x", task="t", question="q", answer="A", answer_type="set", choices=EMOTIONS).validate()  # type: ignore[arg-type]
    assert format_question(multi("B,E")).endswith(
        "F. Anger\nAnswer with every correct option letter, separated by commas (e.g. A,C)."
    )


def test_normalise_choices_hand_worked() -> None:
    parsed = [
        normalise_choices(a, EMOTIONS)
        for a in ["B,E", "e, b", "B and E", "B E", "Fear; Sadness", "B. Fear, E"]
    ]
    assert parsed == [frozenset("BE")] * 6
    assert normalise_choices("B", EMOTIONS) == frozenset("B")
    assert normalise_choices("B, G", EMOTIONS) is None  # G names no option
    assert normalise_choices("B. Joy, E", EMOTIONS) is None  # letter and text contradict
    assert normalise_choices("happy", EMOTIONS) is None


def test_accuracy_is_an_exact_set_match() -> None:
    completions = [done("B,E"), done("E, B"), done("B"), done("A,B,E"), "B,E", done("Fear, Sadness")]
    rewards = accuracy_reward(
        completions, answer=["B,E"] * 6, answer_type=["multi"] * 6, choices=[EMOTIONS] * 6
    )
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_self_reward_votes_by_letter_set() -> None:
    completions = [done("B,E"), done("E,B"), done("B")]
    rewards = self_reward(completions, id=["p"] * 3, answer_type=["multi"] * 3, choices=[EMOTIONS] * 3)
    assert rewards == [1.0, 1.0, 0.0]


def test_chance_of_a_multi_label_question_is_one_in_the_non_empty_sets() -> None:
    assert chance_level(["multi"], [6]) == pytest.approx(1 / 63)
    assert chance_level(["multi", "mc"], [2, 2]) == pytest.approx((1 / 3 + 1 / 2) / 2)
