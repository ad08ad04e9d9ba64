"""The transformers judge on the tiny model: real MP4 clips in, scores in [0, 1] out."""

from __future__ import annotations

import numpy as np
import pytest
from models_helpers import make_clip

from avatar_core.data.media import MediaError
from avatar_core.data.mp4 import write_mp4
from avatar_core.models.judge import JUDGE_INSTRUCTION, TransformersJudge
from avatar_core.rewards.judge import Judge, parse_judge_scores


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    clip = make_clip(n_frames=16, seconds=2.0)
    write_mp4(root / "clip.mp4", clip.frames, clip.audio, fps=8)
    return root


def test_tiny_judge_scores_are_in_unit_interval(tiny_bundle, media_root) -> None:
    judge = TransformersJudge(
        tiny_bundle, n_frames=4, max_new_tokens=12, media_root=str(media_root), batch_size=2
    )
    assert isinstance(judge, Judge)
    completions = ["<think>two beeps and a red flash</think><answer>B</answer>", "no tags at all", ""]
    columns = {
        "facts": ['{"count": 2}', "{}", ""],
        "video": ["clip.mp4", "clip.mp4", ""],
        "question": ["How many?"] * 3,
    }
    answers = judge.raw_answers(completions, **columns)
    scores = judge.score(completions, **columns)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    # The score is the parser applied to what the judge said; an untrained model says no JSON -> 0.
    assert scores == [parse_judge_scores(a) for a in answers]
    assert scores == [0.0, 0.0, 0.0]


def test_judge_prompt_holds_question_reasoning_and_facts(tiny_bundle) -> None:
    judge = TransformersJudge(tiny_bundle)
    messages = judge.build_messages(
        "<think>I hear two beeps</think><answer>2</answer>", '{"count": 2}', "How many beeps?", True
    )
    assert messages[0] == {"role": "system", "content": JUDGE_INSTRUCTION}
    content = messages[1]["content"]
    assert content[0] == {"type": "video"}
    text = content[1]["text"]
    assert "Question: How many beeps?" in text
    assert "Reasoning to rate: I hear two beeps\n" in text
    assert 'Reference facts about the clip: {"count": 2}' in text


def test_judge_rejects_ragged_columns_and_escaping_paths(tiny_bundle, media_root) -> None:
    judge = TransformersJudge(tiny_bundle, n_frames=2, max_new_tokens=4, media_root=str(media_root))
    with pytest.raises(ValueError, match="completions 2, facts 1, video 2, question 2"):
        judge.score(["a", "b"], facts=["{}"], video=["", ""], question=["q", "q"])
    with pytest.raises(MediaError, match="escapes the media root"):
        judge.score(["a"], facts=["{}"], video=["../outside.mp4"], question=["q"])


def test_judge_arguments_are_checked(tiny_bundle) -> None:
    with pytest.raises(ValueError, match="got 0, 64, 8"):
        TransformersJudge(tiny_bundle, n_frames=0)


def test_clip_frames_decoded_for_the_judge_fit_the_processor(tiny_bundle, media_root) -> None:
    clip = TransformersJudge(tiny_bundle, n_frames=4, media_root=str(media_root))._clip("clip.mp4")
    assert clip.frames.shape == (4, 56, 56, 3) and clip.frames.dtype == np.uint8
    assert abs(len(clip.audio) - 32000) < 2000
