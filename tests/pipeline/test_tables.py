"""Metric files to tables: flattening, stage metrics, the evaluation report, artifact keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from avatar_core.pipeline.tables import (
    artifact_key,
    evaluation_markdown,
    flatten_numbers,
    metric_rows,
    read_json,
    stage_metrics,
)


def test_flatten_numbers_hand_worked() -> None:
    value = {
        "acc": 0.5,
        "ok": True,  # booleans are not metrics
        "nan": math.nan,  # nor non-finite values
        "name": "s1",
        "per_task": {"count": {"acc": 1}},
        "rows": [{"stage": "sft", "acc": 0.25}, {"acc": 0.75}, 3],
    }
    assert flatten_numbers(value) == {
        "acc": 0.5,
        "per_task.count.acc": 1.0,
        "rows.sft.acc": 0.25,
        "rows.1.acc": 0.75,
        "rows.2": 3.0,
    }
    assert flatten_numbers(2) == {"value": 2.0}
    assert flatten_numbers("text") == {}


def test_stage_metrics_and_rows(tmp_path: Path) -> None:
    for stage, data in {"s1": {"reward": {"mean": 0.4}}, "sft": {"loss": 1.23456789}}.items():
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "metrics.json").write_text(json.dumps(data))
    (tmp_path / "s2").mkdir()  # a stage that has not run yet has no file
    metrics = stage_metrics(tmp_path)
    assert metrics == {"s1": {"reward.mean": 0.4}, "sft": {"loss": 1.23456789}}
    assert metric_rows(metrics["sft"]) == [{"metric": "loss", "value": 1.234568}]
    assert stage_metrics(tmp_path / "absent") == {}


def test_evaluation_markdown_prefers_the_rendered_report(tmp_path: Path) -> None:
    assert evaluation_markdown(tmp_path) is None
    (tmp_path / "results.json").write_text(json.dumps({"s3": {"test": 0.625}}))
    report = evaluation_markdown(tmp_path)
    assert report is not None and "| s3.test | 0.625 |" in report
    (tmp_path / "results.md").write_text("| stage | accuracy |\n")
    assert evaluation_markdown(tmp_path) == "| stage | accuracy |\n"


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{")
    with pytest.raises(ValueError, match=r"metrics\.json is not valid JSON"):
        read_json(tmp_path / "metrics.json")
    with pytest.raises(FileNotFoundError, match=r"nothing\.json does not exist"):
        read_json(tmp_path / "nothing.json")


def test_artifact_key() -> None:
    assert artifact_key("metrics-rl@s1") == "metrics-rl-s1"
    assert artifact_key("Metrics SFT") == "metrics-sft"
    assert artifact_key("@@") == "artifact"
