"""The JSONL written for lm-eval loads as a real lm-eval multiple-choice task with the right gold index."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_layouts import build_layout

from avatar_core.data.benchmarks import load_benchmark, write_lm_eval_jsonl


@pytest.mark.slow  # imports lm-eval and builds a datasets split: about 4 s
def test_lm_eval_multiple_choice_task_reads_the_jsonl(tmp_path: Path) -> None:
    from lm_eval.api.task import ConfigurableTask

    samples = load_benchmark("mmvu", build_layout("mmvu", "creators", tmp_path / "mmvu")).samples
    write_lm_eval_jsonl(samples, tmp_path / "mmvu.jsonl")
    data_files = {"test": str(tmp_path / "mmvu.jsonl")}
    task = ConfigurableTask(
        config={
            "task": "mmvu_fixture",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": data_files, "cache_dir": str(tmp_path / "cache")},
            "test_split": "test",
            "output_type": "multiple_choice",
            "doc_to_text": "{{prompt}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "answer",
            "doc_to_image": "video",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
    )
    docs = list(task.test_docs())
    assert [task.doc_to_target(doc) for doc in docs] == [0, 1]  # letters A and B
    assert [task.doc_to_choice(doc) for doc in docs] == [s.choices for s in samples]
    assert [doc["video"] for doc in docs] == ["videos/Chemistry/0.mp4", "videos/Thermodynamics/0.mp4"]
    assert task.doc_to_text(docs[1]).startswith("Which process is shown in the animation?\nA. Isothermal")
