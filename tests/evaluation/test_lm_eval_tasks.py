"""The avatar_* lm-eval tasks: indexing, the exported rows, the metric, request parsing, bad input."""

from __future__ import annotations

import json
import os

import pytest
from lm_eval.tasks import TaskManager

from avatar_core.data.benchmarks import BENCHMARKS
from avatar_core.data.media import MediaError
from avatar_core.data.schema import RecordError, Sample, render_messages
from avatar_core.evaluation.lm_eval_model import (
    AvatarLM,
    _greedy_budget,
    chat_messages,
    cut_at_stops,
    video_path,
)
from avatar_core.evaluation.lm_eval_tasks import SYNTH_TASK, TASK_TAG, TASKS_DIR, benchmark_task
from avatar_core.evaluation.lm_eval_tasks.utils import doc_to_sample, process_results
from avatar_core.recipes.evaluate import export_lm_eval_jsonl, score_answers

MC = Sample(
    id="q1",
    task="av_match",
    question="Which object sounds?",
    answer="B",
    choices=["red", "green", "blue"],
    video="clips/a.mp4",
)
NUM = Sample(
    id="q2",
    task="count_beeps",
    question="How many beeps?",
    answer="3",
    answer_type="numeric",
    video="clips/b.mp4",
)
TEXT = Sample(id="q3", task="text", question="Pick one.", answer="A", choices=["x", "y"])


def test_every_task_is_indexed_with_the_shared_tag():
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False)
    expected = {SYNTH_TASK} | {benchmark_task(n) for n in BENCHMARKS.names()}
    assert expected <= set(manager.all_tasks)
    assert TASK_TAG in manager.all_tasks
    assert {t for t in manager.all_tasks if t.startswith("avatar_")} == expected


def test_export_writes_the_rows_the_tasks_read(tmp_path):
    root = tmp_path / "media"
    out = tmp_path / "results" / "eval" / "lm_eval" / "test.jsonl"
    assert export_lm_eval_jsonl([MC, NUM, TEXT], out, root) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {
        "id": "q1",
        "task": "av_match",
        "prompt": "Which object sounds?\nA. red\nB. green\nC. blue\nAnswer with the option letter.",
        "answer": "B",
        "answer_type": "mc",
        "choices": ["red", "green", "blue"],
        "video": str((root / "clips" / "a.mp4").resolve()),
    }
    assert rows[1]["answer"] == "3" and rows[1]["prompt"] == "How many beeps?\nAnswer with a number."
    assert os.path.isabs(rows[1]["video"]) and rows[2]["video"] == ""


def test_export_refuses_media_outside_the_root(tmp_path):
    bad = Sample(id="q9", task="t", question="?", answer="A", choices=["x", "y"], video="../escape.mp4")
    with pytest.raises(MediaError, match=r"escape\.mp4.*escapes the media root"):
        export_lm_eval_jsonl([bad], tmp_path / "x.jsonl", tmp_path / "media")


def test_export_refuses_an_invalid_sample(tmp_path):
    bad = Sample(id="q8", task="t", question="?", answer="D", choices=["x", "y"])
    with pytest.raises(RecordError, match=r"q8.*answer 'D'"):
        export_lm_eval_jsonl([bad], tmp_path / "x.jsonl", tmp_path)


def _row(sample: Sample, tmp_path) -> dict:
    out = tmp_path / "one.jsonl"
    export_lm_eval_jsonl([sample], out, tmp_path)
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    ("sample", "text", "expected"),
    [
        (MC, "<think>green rings</think><answer>B</answer>", 1.0),
        (MC, "<think>red</think><answer>A</answer>", 0.0),
        (MC, "no tags at all", 0.0),
        (NUM, "<think>1, 2, 3</think><answer>3.0</answer>", 1.0),
        (NUM, "<think>four</think><answer>3.1</answer>", 0.0),
    ],
)
def test_process_results_is_the_evaluate_metric(tmp_path, sample, text, expected):
    assert process_results(_row(sample, tmp_path), [text]) == {"acc": expected}
    assert score_answers([text], [sample]) == [expected]


def test_doc_to_sample_names_the_missing_field_and_row():
    with pytest.raises(RecordError, match=r"'q7'.*missing field\(s\) answer_type"):
        doc_to_sample({"id": "q7", "answer": "A", "choices": ["x", "y"]})
    with pytest.raises(RecordError, match=r"'q6'.*answer 'C' is not one of the option letters AB"):
        doc_to_sample({"id": "q6", "answer": "C", "answer_type": "mc", "choices": ["x", "y"]})
    with pytest.raises(ValueError, match=r"'q1'.*expected one generated text"):
        process_results({"id": "q1", "answer": "A", "answer_type": "mc", "choices": ["x", "y"]}, [])


@pytest.mark.parametrize("sample", [MC, NUM, TEXT])
def test_chat_messages_equal_render_messages(sample, tmp_path):
    row = _row(sample, tmp_path)
    assert chat_messages(row["prompt"], bool(row["video"])) == render_messages(sample)


def test_video_path_reads_lm_eval_multimodal_arguments():
    assert video_path(None, "r") is None
    assert video_path({}, "r") is None
    assert video_path({"visual": "/m/a.mp4", "audio": "/m/a.mp4"}, "r") == "/m/a.mp4"
    assert video_path({"audio": ["/m/b.mp4"]}, "r") == "/m/b.mp4"
    assert video_path({"visual": ""}, "r") is None
    assert video_path({"visual": [""]}, "r") is None
    with pytest.raises(ValueError, match=r"request 4.*one video per request, got 2"):
        video_path({"visual": ["/a.mp4", "/b.mp4"]}, "request 4")
    with pytest.raises(ValueError, match=r"request 5.*must be a dict"):
        video_path("/a.mp4", "request 5")
    with pytest.raises(ValueError, match=r"request 6.*must be a file path, got int"):
        video_path({"visual": 3}, "request 6")


def test_generation_kwargs():
    assert _greedy_budget({"until": "</answer>", "max_gen_toks": 8}, "r") == (["</answer>"], 8)
    assert _greedy_budget({"do_sample": False, "temperature": 0}, "r") == ([], 256)
    with pytest.raises(ValueError, match=r"request 2.*do_sample=True"):
        _greedy_budget({"do_sample": True}, "request 2")
    with pytest.raises(ValueError, match=r"request 3.*max_gen_toks must be >= 1, got 0"):
        _greedy_budget({"max_gen_toks": 0}, "request 3")


def test_cut_at_stops_takes_the_earliest_stop():
    assert cut_at_stops("a</answer>b\n\nc", ["\n\n", "</answer>"]) == "a"
    assert cut_at_stops("abc", ["", "x"]) == "abc"
    assert cut_at_stops("abc", []) == "abc"


def test_model_args_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="pretrained=<checkpoint folder> is required"):
        AvatarLM()
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 'auto'"):
        AvatarLM(pretrained=str(tmp_path), batch_size="auto")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        AvatarLM(pretrained=str(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match=r"n_frames: Input should be greater than 0"):
        AvatarLM(pretrained=str(tmp_path), n_frames=0)
    with pytest.raises(FileNotFoundError, match=r"has no config.json"):
        AvatarLM(pretrained=str(tmp_path))


def test_importing_the_adapter_keeps_lm_eval_s_own_models():
    from lm_eval.api.registry import get_model

    assert get_model("avatar") is AvatarLM
    assert get_model("hf").__name__ == "HFLM"
