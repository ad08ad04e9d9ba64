"""Honesty check of a VLM judge: does it score reasoning that matches the clip higher with the frames?

For held-out samples with a reference reasoning trace (reasoning that matches their clip), the
judge scores each trace twice: shown the clip's frames, and shown black frames of the same shape.
A judge that looks at the frames scores the matching reasoning higher when it can see them; one
that scores both the same is reading the text only, and its reward pays for fluent text. The
report gives both means, the mean paired difference with a bootstrap interval, the shares of
pairs scored higher / equal with the frames, how often blanking changed the judge's answer text
at all (a judge whose text never changes does not see the frames), and how many answers held
parsable JSON scores. Verdict: "looks at the frames" when the interval of the difference lies
above 0, else "does not discriminate frames from blank".
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from avatar_core.data.schema import Sample
from avatar_core.evaluation.stats import bootstrap_accuracy
from avatar_core.rewards.judge import judge_scores, parse_judge_scores

log = logging.getLogger(__name__)

LOOKS = "looks at the frames"
BLIND = "does not discriminate frames from blank"


def check_samples(samples: list[Sample], limit: int) -> list[Sample]:
    """Up to `limit` samples with a clip and a reference trace, spread evenly over the set."""
    usable = [s for s in samples if s.video and s.reasoning]
    if len(usable) <= limit:
        return usable
    picks = np.linspace(0, len(usable) - 1, limit).round().astype(int)
    return [usable[i] for i in picks]


def judge_honesty_check(
    judge: Any, samples: list[Sample], limit: int = 32, n_boot: int = 1000, confidence: float = 0.95
) -> dict[str, Any]:
    """Scores of matching reasoning with frames vs blank frames; see the module docstring."""
    chosen = check_samples(samples, limit)
    if not chosen:
        raise ValueError("judge honesty check: no sample has both a clip and a reference reasoning trace")
    columns = {
        "facts": [s.facts for s in chosen],
        "video": [s.video for s in chosen],
        "question": [s.question for s in chosen],
    }
    completions = [s.reasoning for s in chosen]
    with_frames = judge.raw_answers(completions, **columns)
    blank = judge.with_blank_frames().raw_answers(completions, **columns)
    real_scores = np.array([parse_judge_scores(a) for a in with_frames])  # [n]
    blank_scores = np.array([parse_judge_scores(a) for a in blank])  # [n]
    difference = bootstrap_accuracy(real_scores - blank_scores, n_boot, confidence)
    answers = with_frames + blank
    return {
        "judge": getattr(judge, "identity", type(judge).__name__),
        "n": len(chosen),
        "score_with_frames": float(real_scores.mean()),
        "score_blank_frames": float(blank_scores.mean()),
        "difference": difference.accuracy,
        "difference_ci": [difference.ci_low, difference.ci_high],
        "share_higher_with_frames": float(np.mean(real_scores > blank_scores)),
        "share_equal": float(np.mean(real_scores == blank_scores)),
        "answers_changed_by_blanking": float(
            np.mean([a != b for a, b in zip(with_frames, blank, strict=True)])
        ),
        "parsable_answers": float(np.mean([judge_scores(a) is not None for a in answers])),
        "verdict": LOOKS if difference.ci_low > 0 else BLIND,
        "examples": [
            {"id": s.id, "with_frames": a[:200], "blank_frames": b[:200]}
            for s, a, b in zip(chosen[:2], with_frames[:2], blank[:2], strict=False)
        ],
    }


def markdown_report(report: dict[str, Any]) -> str:
    low, high = report["difference_ci"]
    judge = report["judge"].replace("|", "\\|")  # the identity separates its parts with pipes
    return (
        "\n## Judge honesty check (matching reasoning: real frames vs blank frames)\n\n"
        "| judge | n | score, frames | score, blank | difference [95% CI] | higher with frames | "
        "answers changed by blanking | parsable answers | verdict |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {judge} | {report['n']} | {report['score_with_frames']:.3f} | "
        f"{report['score_blank_frames']:.3f} | {report['difference']:+.3f} [{low:+.3f}, {high:+.3f}] | "
        f"{report['share_higher_with_frames']:.2f} | {report['answers_changed_by_blanking']:.2f} | "
        f"{report['parsable_answers']:.2f} | {report['verdict']} |\n"
    )


def judge_check_for(cfg: Any, samples: list[Sample], media_root: Any) -> dict[str, Any] | None:
    """The check for the model judge of RL stage `evaluate.judge_check_stage`, or None when it has none."""
    e = cfg.evaluate
    stage = cfg.rl.stage(e.judge_check_stage)
    if not e.judge_check or "judge" not in stage.rewards or stage.reward_options.judge != "model":
        return None
    from avatar_core.models.judge_factory import build_judge

    if not check_samples(samples, 1):
        log.warning(
            "judge check skipped: no evaluation sample has both a clip and a reference reasoning trace"
        )
        return None
    judge = build_judge(stage.reward_options, media_root)
    report = judge_honesty_check(judge, samples, e.judge_check_samples, e.bootstrap_samples, e.confidence)
    return {"stage": e.judge_check_stage, **report}
