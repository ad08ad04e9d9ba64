"""The nightly history: records appended from the evaluation, table and plot re-rendered, bad files named."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from avatar_core.config import AvatarConfig
from avatar_core.recipes.history import (
    HistoryError,
    history_paths,
    read_history,
    render_markdown,
    run_history,
    select_columns,
    update_history,
)

NIGHT1 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
NIGHT2 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_two_nights_append_and_render(tmp_path: Path) -> None:
    eval_dir = tmp_path / "results" / "eval"
    _write(eval_dir / "metrics.json", {"sft": {"test": 0.25, "test_blank": 0.26}, "s3": {"test": 0.5}})
    update_history(eval_dir, when=NIGHT1)
    _write(eval_dir / "metrics.json", {"sft": {"test": 0.25, "test_blank": 0.24}, "s3": {"test": 0.625}})
    records = update_history(eval_dir, when=NIGHT2)

    jsonl, md, png = history_paths(eval_dir)
    assert jsonl == tmp_path / "results" / "history.jsonl"
    assert read_history(jsonl) == records
    assert [r["time"] for r in records] == ["2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z"]
    assert records[1]["metrics"] == {"sft.test": 0.25, "sft.test_blank": 0.24, "s3.test": 0.625}
    assert records[1]["source"] == str(eval_dir / "metrics.json")
    table = md.read_text().splitlines()
    assert table[0] == "# Nightly evaluation history (2 runs, latest 2 shown)"
    assert table[2] == "| time | sft.test | s3.test |"  # blank-media control left out, stage order kept
    assert table[4] == "| 2026-03-01T02:00:00Z | 0.25 | 0.5 |"
    assert table[5] == "| 2026-03-02T02:00:00Z | 0.25 | 0.625 |"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_falls_back_to_results_json_and_picks_accuracy_keys(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    _write(eval_dir / "results.json", {"stages": {"s1": {"test": {"media": {"accuracy": 0.75, "n": 96}}}}})
    (record,) = update_history(eval_dir, when=NIGHT1)
    assert record["metrics"] == {"stages.s1.test.media.accuracy": 0.75, "stages.s1.test.media.n": 96.0}
    assert select_columns([record]) == ["stages.s1.test.media.accuracy"]


def test_missing_metric_in_an_older_run_shows_a_dash() -> None:
    records = [
        {"time": "t1", "metrics": {"a.acc": 0.1}},
        {"time": "t2", "metrics": {"a.acc": 0.2, "b.acc": 0.3}},
    ]
    table = render_markdown(records, select_columns(records))
    assert "| t1 | 0.1 | - |" in table and "| t2 | 0.2 | 0.3 |" in table


def test_no_evaluation_yet(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"results\.json does not exist: run `avatar evaluate` first"):
        update_history(tmp_path / "eval")


def test_evaluation_that_is_not_an_object_or_not_json(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    _write(eval_dir / "metrics.json", [0.5])
    with pytest.raises(HistoryError, match=r"metrics\.json: expected a JSON object .* got list"):
        update_history(eval_dir)
    (eval_dir / "metrics.json").write_text("{oops")
    with pytest.raises(HistoryError, match=r"metrics\.json is not valid JSON"):
        update_history(eval_dir)
    _write(eval_dir / "metrics.json", {"note": "no numbers"})
    with pytest.raises(HistoryError, match="holds no numbers"):
        update_history(eval_dir)


def test_corrupt_history_line_is_named_and_nothing_is_appended(tmp_path: Path) -> None:
    eval_dir = tmp_path / "results" / "eval"
    _write(eval_dir / "metrics.json", {"s1": {"test": 0.5}})
    jsonl = history_paths(eval_dir)[0]
    jsonl.write_text('{"time": "t", "metrics": {}}\nnot json\n')
    with pytest.raises(HistoryError, match=r"history\.jsonl:2: not a JSON record"):
        update_history(eval_dir)
    jsonl.write_text('{"time": "t"}\n')
    with pytest.raises(HistoryError, match=r"history\.jsonl:1: a record needs 'time' and a 'metrics' object"):
        update_history(eval_dir)
    assert jsonl.read_text() == '{"time": "t"}\n'


def test_run_history_uses_the_configured_eval_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eval_dir = tmp_path / "out" / "eval"
    _write(eval_dir / "metrics.json", {"s2": {"test": 0.4}})
    cfg = AvatarConfig.model_validate({"paths": {"eval_dir": str(eval_dir)}})
    run_history(cfg)
    assert "history: 1 runs" in capsys.readouterr().out
    assert len(read_history(tmp_path / "out" / "history.jsonl")) == 1


def _night(eval_dir: Path, metrics: dict, benchmarks: dict) -> None:
    _write(eval_dir / "metrics.json", metrics)
    _write(eval_dir / "results.json", {"stages": {}, "benchmarks": benchmarks})


COUNTING_REPORT = {
    "status": "evaluated",
    "root": "/b/cg",
    "layout": "creators' release: cg-av-counting.json",
    "read": 3,
    "rejected": 2,
    "skipped": 0,
    "undecodable": 0,
    "rejected_records": [{"file": "f", "record": "1", "reason": "bad"}],
}


def test_benchmark_tables_and_a_missing_benchmark(tmp_path: Path) -> None:
    eval_dir = tmp_path / "results" / "eval"
    official = {
        "avcounting": {
            "sft": {"exact_acc": 0.0, "off_by_one_acc": 0.5, "mae": 3.0, "rmse": 4.0, "n": 3},
            "s3": {"exact_acc": 0.3333, "off_by_one_acc": 0.6667, "mae": 1.6667, "rmse": 2.0817, "n": 3},
        },
        "videoholmes": {"s3": {"acc": 0.25, "n": 4}},
    }
    metrics = {
        "sft": {"test": 0.25, "avcounting": 0.0, "avcounting_blank": 0.0},
        "s3": {
            "test": 0.5,
            "test/count_beeps": 0.75,
            "avcounting": 0.3333,
            "avcounting_blank_media": 0.0,
            "avcounting/event": 0.5,
            "videoholmes": 0.25,
        },
        "official": official,
    }
    vh_report = {**COUNTING_REPORT, "layout": "Hugging Face snapshot", "read": 4, "rejected": 0}
    _night(eval_dir, metrics, {"avcounting": COUNTING_REPORT, "videoholmes": vh_report})
    update_history(eval_dir, when=NIGHT1)
    metrics2 = {
        "sft": {"test": 0.25},
        "s3": {"test": 0.5, "avcounting": 0.6667},
        "official": {"avcounting": {"s3": {**official["avcounting"]["s3"], "exact_acc": 0.6667}}},
    }
    missing = {
        "status": "missing",
        "root": "/b/vh",
        "reason": "videoholmes: benchmark folder /b/vh does not exist",
    }
    _night(eval_dir, metrics2, {"avcounting": COUNTING_REPORT, "videoholmes": missing})
    records = update_history(eval_dir, when=NIGHT2)

    assert records[0]["benchmarks"]["avcounting"] == {
        "status": "evaluated",
        "layout": "creators' release: cg-av-counting.json",
        "read": 3,
        "rejected": 2,
        "skipped": 0,
        "undecodable": 0,
    }  # the record lists stay in results.json
    assert records[1]["metrics"]["official.avcounting.s3.exact_acc"] == 0.6667
    # benchmark sets go to their own tables, per-family accuracies stay in history.jsonl
    assert select_columns(records) == ["sft.test", "s3.test"]
    assert records[0]["metrics"]["s3.test/count_beeps"] == 0.75
    md = history_paths(eval_dir)[1].read_text()
    assert (
        "## avcounting: official metrics, stage s3; latest run: 3 records read, 2 rejected\n\n"
        "Layout: creators' release: cg-av-counting.json\n\n"
        "| time | exact_acc | off_by_one_acc | mae | rmse | n | our_acc |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 2026-03-01T02:00:00Z | 0.3333 | 0.6667 | 1.667 | 2.082 | 3 | 0.3333 |\n"
        "| 2026-03-02T02:00:00Z | 0.6667 | 0.6667 | 1.667 | 2.082 | 3 | 0.6667 |\n"
    ) in md
    assert (
        "## videoholmes: official metrics, stage s3\n\n"  # kept from the first night; '-' for the second
        "| time | acc | n | our_acc |\n|---|---|---|---|\n"
        "| 2026-03-01T02:00:00Z | 0.25 | 4 | 0.25 |\n| 2026-03-02T02:00:00Z | - | - | - |\n"
    ) in md
    assert md.endswith(
        "## Benchmarks not evaluated in the latest run\n\n"
        "- videoholmes: videoholmes: benchmark folder /b/vh does not exist\n"
    )
    first_night = render_markdown(records[:1], select_columns(records[:1]))
    assert "Layout: Hugging Face snapshot" in first_night  # the first night read it


def test_plot_has_a_panel_per_benchmark(tmp_path: Path) -> None:
    from PIL import Image

    eval_dir = tmp_path / "eval"
    official = {
        "avcounting": {"s3": {"exact_acc": 0.5, "mae": 1.0, "n": 2}},
        "mmvu": {"s3": {"acc": 0.5, "n": 2}},
    }
    _night(eval_dir, {"s3": {"test": 0.5}, "official": official}, {"avcounting": COUNTING_REPORT})
    update_history(eval_dir, when=NIGHT1)
    with Image.open(history_paths(eval_dir)[2]) as image:
        assert image.size == (800, 1050)  # 8 x (4.5 + 3 per benchmark panel) inches at 100 dpi
