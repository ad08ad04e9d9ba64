"""Each benchmark's official metrics against hand-worked values and a literal transcription of the
creators' scoring loops."""

from __future__ import annotations

import doctest
import math
import random

import pytest

import avatar_core.evaluation.official as official
from avatar_core.data.schema import Sample
from avatar_core.evaluation.official import (
    choice_accuracy,
    counting_errors,
    counting_metrics,
    intentbench_metrics,
    letters_f1,
    official_markdown,
    official_metrics,
)


def done(answer: str) -> str:
    return f"<think>looked and listened</think><answer>{answer}</answer>"


def count(task: str, answer: str) -> Sample:
    return Sample(
        id=f"c/{task}/{answer}", task=task, question="How many?", answer=answer, answer_type="numeric"
    )


def creators_black_box(preds: list[float], gts: list[float]) -> dict[str, float]:
    """AV-Reasoner eval/black_box_evaluation.py, line by line (the predictions already parsed)."""
    count_, correct, correct_1, mae, rmse = 0, 0, 0, 0.0, 0.0
    for pred, gt in zip(preds, gts, strict=True):
        count_ += 1
        if abs(float(gt) - float(pred)) < 1e-5:
            correct += 1
        if abs(float(gt) - float(pred)) <= 1:
            correct_1 += 1
        if abs(float(gt) - float(pred)) <= max(2 * float(gt), 100):
            mae += abs(float(gt) - float(pred))
            rmse += abs(float(gt) - float(pred)) ** 2
        else:
            mae += abs(float(gt) * 2)
            rmse += abs(float(gt) * 2) ** 2
    return {
        "exact_acc": correct / count_,
        "off_by_one_acc": correct_1 / count_,
        "mae": mae / count_,
        "rmse": math.sqrt(rmse / count_),
    }


def test_counting_errors_hand_worked() -> None:
    # errors 0, 1, 2, 490 (> max(2*10, 100): counted as 2*10 = 20)
    assert counting_errors([4, 3, 0, 500], [4, 2, 2, 10]) == {
        "exact_acc": 0.25,
        "off_by_one_acc": 0.5,
        "mae": (0 + 1 + 2 + 20) / 4,
        "rmse": math.sqrt((0 + 1 + 4 + 400) / 4),
    }
    # an error of exactly max(2 gt, 100) is kept: gt 60, pred 180 -> error 120 <= 120
    assert counting_errors([180], [60])["mae"] == 120


def test_counting_errors_match_the_creators_loop_on_random_counts() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        gts = [float(rng.randint(0, 60)) for _ in range(n)]
        preds = [float(rng.choice([g, g + 1, g - 1, rng.randint(0, 400), 10**6])) for g in gts]
        ours, theirs = counting_errors(preds, gts), creators_black_box(preds, gts)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-12), key


def test_counting_metrics_parse_answers_and_break_down_by_category() -> None:
    samples = [count("event", "4"), count("event", "2"), count("object", "7"), count("object", "0")]
    texts = [done("4"), done("three"), "7 people, no answer block", done("0")]
    result = counting_metrics(samples, texts)
    # predictions 4, 3, 0 (no <answer>: the creators count it as 0), 0
    assert result["n"] == 4
    assert result["metrics"] == creators_black_box([4, 3, 0, 0], [4, 2, 7, 0])
    assert result["by_category"]["event"] == {"n": 2, **creators_black_box([4, 3], [4, 2])}
    assert result["by_category"]["object"] == {"n": 2, **creators_black_box([0, 0], [7, 0])}
    assert (
        result["by_category"]["event"]["off_by_one_acc"] == 1.0
        and result["by_category"]["event"]["mae"] == 0.5
    )


def intent(kind: str, answer: str, choices: list[str], answer_type: str = "mc") -> Sample:
    return Sample(
        id=f"ib/{kind}/{answer}",
        task=kind,
        question="?",
        answer=answer,
        answer_type=answer_type,
        choices=choices,
    )


EMOTIONS = ["Joy", "Fear", "Surprise", "Disgust", "Sadness", "Anger"]


def test_intentbench_scores_as_its_creators() -> None:
    mc = intent("multiple choice", "C", ["a", "b", "c", "d"])
    multi = intent("emer_ov_mc", "B,E", EMOTIONS, "multi")
    lie = intent("judge", "A", ["Yes", "No"])
    truth = intent("judge", "B", ["Yes", "No"])
    cases = [
        (mc, done("C"), 1.0),
        (mc, done("(C)"), 0.0),  # the creators compare the answer text with the letter exactly
        (mc, "C", 0.0),  # no answer block
        (multi, done("B,E"), 1.0),
        (multi, done("B"), 2 / 3),  # precision 1, recall 1/2
        (multi, done("B, E"), 0.5),  # split without trimming: {"B", " E"}: 1 of 2 each way
        (multi, done("A,B,E,F"), 2 / 3),  # precision 1/2, recall 1
        (lie, done("Yes, he is lying"), 1.0),
        (lie, done("No"), 0.0),
        (truth, done("no"), 1.0),
        (truth, done("I do not know"), 1.0),  # "no" is a substring, as in their code
    ]
    for sample, text, expected in cases:
        assert official.intent_score(text, sample) == pytest.approx(expected), (sample.task, text)
    samples = [c[0] for c in cases]
    result = intentbench_metrics(samples, [c[1] for c in cases])
    assert result["metrics"]["mean_acc"] == pytest.approx(sum(c[2] for c in cases) / len(cases))
    assert result["by_category"]["emer_ov_mc"] == {
        "n": 4,
        "mean_acc": pytest.approx((1 + 2 / 3 + 0.5 + 2 / 3) / 4),
    }
    assert result["by_category"]["judge"]["mean_acc"] == 0.75
    assert letters_f1("", "B") == 0.0


def test_choice_accuracy_overall_and_per_category() -> None:
    samples = [
        Sample(id=f"v/{i}", task=task, question="?", answer=answer, choices=["cat", "dog", "bird"])
        for i, (task, answer) in enumerate([("SR", "A"), ("SR", "B"), ("TA", "C"), ("TA", "A")])
    ]
    texts = [done("A"), done("dog"), done("B"), "A"]  # the option text counts; no answer block does not
    result = choice_accuracy(samples, texts)
    assert result == {
        "metrics": {"acc": 0.5},
        "n": 4,
        "by_category": {"SR": {"n": 2, "acc": 1.0}, "TA": {"n": 2, "acc": 0.0}},
    }
    assert official_metrics("videoholmes", samples, texts) == result
    assert official_metrics("avcounting", [count("event", "3")], [done("3")])["metrics"]["exact_acc"] == 1.0


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="accuracy: 1 outputs for 2 samples"):
        official_metrics("mmvu", [count("e", "1")] * 2, ["x"])
    with pytest.raises(ValueError, match="intentbench: nothing to score"):
        official_metrics("intentbench", [], [])
    with pytest.raises(ValueError, match="counting_errors: 1 predictions for 2 counts"):
        counting_errors([1], [1, 2])


def test_markdown_lists_stages_then_categories() -> None:
    table = official_markdown(
        {
            "avcounting": {
                "sft": counting_metrics([count("event", "2")], [done("2")]),
                "s3": counting_metrics([count("event", "2"), count("object", "1")], [done("3"), done("1")]),
            }
        }
    )
    assert "| stage | n | exact_acc | off_by_one_acc | mae | rmse |" in table
    assert "| sft | 1 | 1.000 | 1.000 | 0.000 | 0.000 |" in table
    assert "By category (s3):" in table and "| object | 1 | 1.000 | 1.000 | 0.000 | 0.000 |" in table


def test_doctests() -> None:
    result = doctest.testmod(official)
    assert result.attempted >= 3 and result.failed == 0
