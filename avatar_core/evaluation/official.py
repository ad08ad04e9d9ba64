"""Each benchmark's own metrics, computed from the model's outputs beside our accuracy.

`official_metrics(benchmark, samples, texts)` returns `{"metrics": {...}, "n": N, "by_category":
{category: {"n": ..., metric: ...}}}`, where the category is `Sample.task` (the field each
benchmark reports per category: OmniBench `task type`, Daily-Omni `Type`, WorldSense
`task_type`, MMVU subject, Video-Holmes question type, AV-Odyssey subfield, CG-AV-Counting
category, IntentBench problem type).

- Multiple-choice benchmarks (omnibench, dailyomni, worldsense, mmvu, videoholmes, avodyssey):
  `acc`, the share of questions answered with the right option, overall and per category, as
  their evaluation scripts and lmms-eval report it.
- avcounting (AV-Reasoner `eval/black_box_evaluation.py`): `exact_acc` (|pred - gt| < 1e-5),
  `off_by_one_acc` (|pred - gt| <= 1), `mae`, `rmse`. As the creators do, an answer that states
  no number counts as 0, and an error above max(2 gt, 100) is replaced by 2 gt before MAE and
  RMSE (so one runaway number cannot swamp the means). The AVATAR authors' CG-AV-Counting script
  leaves errors uncapped; we follow the creators.
- intentbench (HumanOmniV2 `eval/eval_humanomniv2.py`, `reward_fn`): `mean_acc`, the mean of a
  per-question score: multiple choice 1 when the answer text equals the letter; emer_ov_mc the F1
  between the predicted and true letter lists, both split on commas exactly as the creators
  split them (no trimming, so "B, E" scores as {"B", " E"}); judge 1 when both the answer and the
  truth contain "yes", or both contain "no" (case-insensitive substrings, as in their code). The
  answer text is the first `<answer>` block, as their `extract_answer` takes it. The AVATAR
  authors' script scores emer_ov_mc by exact set match instead: that is our accuracy for
  multi-label questions (avatar_core.rewards), reported beside.

Departure for the multiple-choice benchmarks and CG-AV-Counting: the answer is the `<answer>`
block, parsed as everywhere in this project (avatar_core.rewards.parsing). Their scripts fall back
to letters or number words found anywhere in the reply and, for some, to a default guess ('A',
or a random letter) when there is none; those heuristics reward text outside the answer format,
so they are not reproduced. Pure functions: no I/O.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence

from avatar_core.data.schema import OPTION_LETTERS, Sample
from avatar_core.registry import Registry
from avatar_core.rewards.parsing import normalise_choice, parse_completion, parse_number

Scorer = Callable[[Sequence[Sample], Sequence[str]], dict]
SCORERS: Registry[Scorer] = Registry("official scorer")
COUNT_EXACT_TOL = 1e-5
_FIRST_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def _check(samples: Sequence[Sample], texts: Sequence[str], scorer: str) -> None:
    if len(samples) != len(texts):
        raise ValueError(f"{scorer}: {len(texts)} outputs for {len(samples)} samples")
    if not samples:
        raise ValueError(f"{scorer}: nothing to score (no samples)")


def _grouped(
    samples: Sequence[Sample], values: Sequence[float], metric: Callable[[list[float]], dict]
) -> dict:
    groups: dict[str, list[float]] = defaultdict(list)
    for sample, value in zip(samples, values, strict=True):
        groups[sample.task].append(value)
    return {task: {"n": len(v), **metric(v)} for task, v in sorted(groups.items())}


# --------------------------------------------------------------------------- multiple choice


def choice_correct(text: str, sample: Sample) -> float:
    """1.0 when the `<answer>` block names the right option letter (or its text), else 0.0."""
    answer = parse_completion(text).answer
    if answer is None:
        return 0.0
    return 1.0 if normalise_choice(answer, list(sample.choices)) == sample.answer.strip().upper() else 0.0


def _acc(values: list[float]) -> dict[str, float]:
    return {"acc": sum(values) / len(values)}


@SCORERS.register("accuracy")
def choice_accuracy(samples: Sequence[Sample], texts: Sequence[str]) -> dict:
    """`acc` overall and per category."""
    _check(samples, texts, "accuracy")
    scores = [choice_correct(t, s) for s, t in zip(samples, texts, strict=True)]
    return {"metrics": _acc(scores), "n": len(scores), "by_category": _grouped(samples, scores, _acc)}


# --------------------------------------------------------------------------- counting


def predicted_count(text: str) -> float:
    """The number in the `<answer>` block; 0 when there is none (the creators' rule)."""
    answer = parse_completion(text).answer
    value = parse_number(answer) if answer is not None else None
    return 0.0 if value is None else value


def counting_errors(predicted: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    """exact_acc, off_by_one_acc, mae, rmse of counts; errors above max(2 gt, 100) count as 2 gt.

    >>> counting_errors([4, 3, 0, 500], [4, 2, 2, 10])
    {'exact_acc': 0.25, 'off_by_one_acc': 0.5, 'mae': 5.75, 'rmse': 10.062305898749054}
    """
    if len(predicted) != len(truth) or not truth:
        raise ValueError(f"counting_errors: {len(predicted)} predictions for {len(truth)} counts")
    exact = off_by_one = abs_sum = sq_sum = 0.0
    for pred, gt in zip(predicted, truth, strict=True):
        error = abs(gt - pred)
        exact += error < COUNT_EXACT_TOL
        off_by_one += error <= 1
        capped = error if error <= max(2 * gt, 100) else abs(2 * gt)
        abs_sum += capped
        sq_sum += capped**2
    n = len(truth)
    return {
        "exact_acc": exact / n,
        "off_by_one_acc": off_by_one / n,
        "mae": abs_sum / n,
        "rmse": math.sqrt(sq_sum / n),
    }


@SCORERS.register("counting")
def counting_metrics(samples: Sequence[Sample], texts: Sequence[str]) -> dict:
    """CG-AV-Counting's four metrics overall and per category."""
    _check(samples, texts, "counting")
    pairs = [(predicted_count(t), float(s.answer)) for s, t in zip(samples, texts, strict=True)]
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for sample, pair in zip(samples, pairs, strict=True):
        groups[sample.task].append(pair)
    return {
        "metrics": counting_errors([p for p, _ in pairs], [g for _, g in pairs]),
        "n": len(pairs),
        "by_category": {
            task: {"n": len(v), **counting_errors([p for p, _ in v], [g for _, g in v])}
            for task, v in sorted(groups.items())
        },
    }


# --------------------------------------------------------------------------- IntentBench


def first_answer_text(text: str) -> str:
    """The first `<answer>` block, stripped ('' when there is none), as the creators extract it."""
    match = _FIRST_ANSWER.search(text)
    return match.group(1).strip() if match else ""


def letters_f1(predicted: str, truth: str) -> float:
    """F1 of two comma-separated letter lists, split without trimming (the creators' `emer_ov_mc`).

    >>> letters_f1("B,E", "B,E"), letters_f1("B", "B,E"), letters_f1("B, E", "B,E"), letters_f1("", "B")
    (1.0, 0.6666666666666666, 0.5, 0.0)
    """
    pred, gold = predicted.split(","), truth.split(",")
    hits = len(set(pred) & set(gold))
    precision, recall = hits / len(pred), hits / len(gold)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def yes_no_agree(predicted: str, truth: str) -> float:
    """1.0 when both texts contain "yes", or both contain "no" (substrings, any case), as the creators judge.

    >>> yes_no_agree("Yes, he is lying", "Yes"), yes_no_agree("no", "Yes"), yes_no_agree("I do not know", "No")
    (1.0, 0.0, 1.0)
    """
    pred, gold = predicted.lower(), truth.lower()
    return 1.0 if ("yes" in gold and "yes" in pred) or ("no" in gold and "no" in pred) else 0.0


def intent_score(text: str, sample: Sample) -> float:
    """The creators' score of one IntentBench answer (see the module doc)."""
    answer = first_answer_text(text)
    if sample.answer_type == "multi":
        return letters_f1(answer, sample.answer)
    if sample.task == "judge":
        return yes_no_agree(answer, sample.choices[OPTION_LETTERS.index(sample.answer.strip().upper())])
    return 1.0 if answer == sample.answer.strip() else 0.0


def _mean_acc(values: list[float]) -> dict[str, float]:
    return {"mean_acc": sum(values) / len(values)}


@SCORERS.register("intentbench")
def intentbench_metrics(samples: Sequence[Sample], texts: Sequence[str]) -> dict:
    """The creators' `mean_acc` overall and per problem type."""
    _check(samples, texts, "intentbench")
    scores = [intent_score(t, s) for s, t in zip(samples, texts, strict=True)]
    return {
        "metrics": _mean_acc(scores),
        "n": len(scores),
        "by_category": _grouped(samples, scores, _mean_acc),
    }


# --------------------------------------------------------------------------- dispatch

SCORER_OF = {"avcounting": "counting", "intentbench": "intentbench"}  # every other benchmark: accuracy


def official_metrics(benchmark: str, samples: Sequence[Sample], texts: Sequence[str]) -> dict:
    """The metrics `benchmark` defines, for greedy outputs `texts` aligned with `samples`."""
    return SCORERS.get(SCORER_OF.get(benchmark, "accuracy"))(samples, texts)


def official_markdown(official: dict[str, dict[str, dict]]) -> str:
    """Tables of `{benchmark: {stage: official_metrics(...)}}`: headline metrics per stage, then
    the categories of the last stage."""
    parts = []
    for bench, stages in official.items():
        if not stages:
            continue
        names = list(next(iter(stages.values()))["metrics"])
        rows = [
            f"| {stage} | {r['n']} | " + " | ".join(f"{r['metrics'][m]:.3f}" for m in names) + " |"
            for stage, r in stages.items()
        ]
        last_stage, last = list(stages.items())[-1]
        cats = [
            f"| {cat} | {c['n']} | " + " | ".join(f"{c[m]:.3f}" for m in names) + " |"
            for cat, c in last["by_category"].items()
        ]
        head = "| {} | n | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names)
        parts.append(
            f"### {bench} (official metrics)\n\n{head.format('stage')}\n"
            + "\n".join(rows)
            + f"\n\nBy category ({last_stage}):\n\n{head.format('category')}\n"
            + "\n".join(cats)
            + "\n"
        )
    return "\n".join(parts)
