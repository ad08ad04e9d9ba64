"""The judge honesty check: matching reasoning scored with the clip's frames vs black frames."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from avatar_core.config import load_config
from avatar_core.data.mp4 import write_mp4
from avatar_core.data.schema import Sample
from avatar_core.evaluation.judge_check import (
    BLIND,
    LOOKS,
    check_samples,
    judge_check_for,
    judge_honesty_check,
    markdown_report,
)
from avatar_core.models.judge import JudgeFrames

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check_media")
    rng = np.random.default_rng(0)
    for k in range(4):
        frames = rng.integers(40 + 40 * k, 80 + 40 * k, size=(8, 56, 56, 3), dtype=np.uint8)
        write_mp4(root / f"c{k}.mp4", frames, np.zeros(16000, np.float32), fps=4)
    return root


def samples(n: int = 4) -> list[Sample]:
    return [
        Sample(
            id=f"s{k}",
            task="count_flashes",
            question="How many flashes?",
            answer="2",
            answer_type="numeric",
            video=f"c{k}.mp4",
            reasoning=f"<think>I see {k} flashes</think><answer>{k}</answer>",
            facts=json.dumps({"count": k}),
        )
        for k in range(n)
    ]


class BrightnessJudge:
    """Scores perception by how bright the frames it is shown are: a judge that looks."""

    identity = "brightness"

    def __init__(self, media_root: Path) -> None:
        self.frames = JudgeFrames(media_root, 2, 56 * 56)

    def with_blank_frames(self):
        blank = copy.copy(self)
        blank.frames = self.frames.blanked()
        return blank

    def raw_answers(self, completions, *, facts, video, question):
        return [json.dumps({"perception": float(self.frames.frames(v).mean()) / 255 * 5}) for v in video]


class TextOnlyJudge(BrightnessJudge):
    """Scores the text alone, whatever it is shown: a judge that does not look."""

    identity = "text-only"

    def raw_answers(self, completions, *, facts, video, question):
        return [json.dumps({"reasoning": len(c) % 6}) for c in completions]


def test_a_judge_that_looks_scores_frames_above_blank(media) -> None:
    report = judge_honesty_check(BrightnessJudge(media), samples(), limit=4, n_boot=200)
    assert report["verdict"] == LOOKS and report["n"] == 4
    assert report["score_blank_frames"] == 0.0 and report["score_with_frames"] > 0.2
    assert report["difference"] == pytest.approx(report["score_with_frames"])
    assert report["difference_ci"][0] > 0
    assert report["share_higher_with_frames"] == 1.0 and report["answers_changed_by_blanking"] == 1.0
    assert report["parsable_answers"] == 1.0


def test_a_text_only_judge_is_flagged(media) -> None:
    report = judge_honesty_check(TextOnlyJudge(media), samples(), limit=4, n_boot=200)
    assert report["verdict"] == BLIND
    assert report["difference"] == 0.0 and report["difference_ci"] == [0.0, 0.0]
    assert report["share_equal"] == 1.0 and report["answers_changed_by_blanking"] == 0.0
    assert "does not discriminate" in markdown_report(report)
    assert "| inproc\\|internvl | 4 |" in markdown_report({**report, "judge": "inproc|internvl"})  # one cell


def test_sample_choice_needs_a_clip_and_a_trace() -> None:
    pool = samples(4)
    pool[1].reasoning = ""
    pool[2].video = ""
    assert [s.id for s in check_samples(pool, 10)] == ["s0", "s3"]
    assert [s.id for s in check_samples(samples(4), 2)] == ["s0", "s3"]  # spread over the set
    with pytest.raises(ValueError, match="no sample has both a clip and a reference reasoning trace"):
        judge_honesty_check(TextOnlyJudge(Path(".")), pool[1:3], limit=4)


def test_evaluate_checks_only_a_configured_model_judge(media, tmp_path) -> None:
    from avatar_core.models.internvl import build_tiny_internvl, save_internvl

    assert judge_check_for(load_config(REPO / "params.yaml"), samples(), media) is None  # rule judge
    folder = tmp_path / "tiny_internvl"
    save_internvl(build_tiny_internvl(seed=0), folder)
    overrides = [
        "rl.s3.reward_options.judge=model",
        f"rl.s3.reward_options.judge_model={folder}",
        "rl.s3.reward_options.judge_frames=3",
        "rl.s3.reward_options.judge_max_new_tokens=6",
        "evaluate.judge_check_samples=3",
        "evaluate.bootstrap_samples=100",
    ]
    cfg = load_config(REPO / "params.yaml", overrides)
    traceless = samples()
    for s in traceless:
        s.reasoning = ""
    assert judge_check_for(cfg, traceless, media) is None  # skipped with a warning, not a crash
    report = judge_check_for(cfg, samples(), media)
    assert report["stage"] == "s3" and report["n"] == 3 and report["judge"].startswith("inproc|internvl|")
    assert report["verdict"] in (LOOKS, BLIND)
    assert 0.0 <= report["score_with_frames"] <= 1.0 and 0.0 <= report["answers_changed_by_blanking"] <= 1.0
    assert (
        judge_check_for(
            load_config(REPO / "params.yaml", [*overrides, "evaluate.judge_check=false"]), samples(), media
        )
        is None
    )
