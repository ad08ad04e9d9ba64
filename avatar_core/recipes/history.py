"""Nightly evaluation history: append the latest evaluation to a JSON-lines log and render it.

`avatar history` (run by the `nightly-eval` flow after the forced re-evaluation) reads
`<eval_dir>/metrics.json` (the evaluation's compact `{stage: {set: accuracy}}`; `results.json`
when there is none), appends one record `{"time", "source", "metrics"}` to
`<parent of eval_dir>/history.jsonl` (results/history.jsonl by default), then rewrites
`history.md` (a table of the most recent runs) and `history.png` (one line per tracked metric)
beside it. Pure file I/O and matplotlib: no model, no orchestration. The evaluation's JSON layout
belongs to the evaluation recipe; records keep every number in it under its dotted path, and the
table and plot show the accuracy-like ones (keys containing "acc", or all when none do), without
the blank-media controls.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avatar_core.config import AvatarConfig
from avatar_core.pipeline.tables import flatten_numbers, markdown_table, read_json

HISTORY_NAME = "history"
MAX_COLUMNS = 10
TABLE_ROWS = 30


class HistoryError(ValueError):
    """A history or evaluation file that cannot be used; the message names the file and line."""


def history_paths(eval_dir: str | Path) -> tuple[Path, Path, Path]:
    """(history.jsonl, history.md, history.png) beside the evaluation folder."""
    parent = Path(eval_dir).parent
    return (parent / f"{HISTORY_NAME}.jsonl", parent / f"{HISTORY_NAME}.md", parent / f"{HISTORY_NAME}.png")


def make_record(results: Any, when: datetime, source: str) -> dict[str, Any]:
    """One history entry: the UTC time, where the numbers came from, and every number flattened."""
    if not isinstance(results, dict):
        raise HistoryError(
            f"{source}: expected a JSON object of evaluation results, got {type(results).__name__}"
        )
    metrics = flatten_numbers(results)
    if not metrics:
        raise HistoryError(f"{source}: holds no numbers to record")
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"time": stamp, "source": source, "metrics": metrics}


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every record of a history file (none when it does not exist yet)."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise HistoryError(f"{path}:{number}: not a JSON record ({err.msg})") from None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("metrics"), dict)
            or "time" not in record
        ):
            raise HistoryError(f"{path}:{number}: a record needs 'time' and a 'metrics' object")
        records.append(record)
    return records


def append_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def select_columns(records: list[dict[str, Any]], max_columns: int = MAX_COLUMNS) -> list[str]:
    """Metric keys to show, in the latest record's order: accuracy-like keys (last part contains
    'acc') when there are any, else all; blank-media controls dropped unless nothing else is left."""
    if not records:
        return []
    keys = list(records[-1]["metrics"])
    accuracy = [k for k in keys if "acc" in k.rsplit(".", 1)[-1].lower()]
    chosen = accuracy or keys
    with_media = [k for k in chosen if "blank" not in k.lower()]
    return (with_media or chosen)[:max_columns]


def render_markdown(records: list[dict[str, Any]], columns: list[str], rows: int = TABLE_ROWS) -> str:
    """A Markdown table of the latest `rows` records (newest last); '-' where a run lacks a metric."""
    body = [
        [r["time"], *(f"{r['metrics'][c]:.4g}" if c in r["metrics"] else "-" for c in columns)]
        for r in records[-rows:]
    ]
    title = f"# Nightly evaluation history ({len(records)} runs, latest {min(rows, len(records))} shown)\n\n"
    return title + markdown_table(["time", *columns], body)


def render_plot(records: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """One line per metric over the runs, x labelled with the run dates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for column in columns:
        points = [(i, r["metrics"][column]) for i, r in enumerate(records) if column in r["metrics"]]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=column)
    ticks = list(range(0, len(records), max(1, len(records) // 8)))
    ax.set_xticks(ticks, [records[i]["time"][:10] for i in ticks], rotation=30, ha="right")
    ax.set_xlabel("nightly run")
    ax.set_ylabel("value")
    ax.set_title("Nightly evaluation history")
    if columns:
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluation_file(eval_dir: str | Path) -> Path:
    """The evaluation's compact `metrics.json` when it wrote one, else its full `results.json`."""
    compact = Path(eval_dir) / "metrics.json"
    return compact if compact.is_file() else Path(eval_dir) / "results.json"


def update_history(eval_dir: str | Path, when: datetime | None = None) -> list[dict[str, Any]]:
    """Append the evaluation in `eval_dir` to the history and re-render the table and plot; returns
    all records. The existing history is validated before anything is appended."""
    source = evaluation_file(eval_dir)
    if not source.is_file():
        raise HistoryError(f"{source} does not exist: run `avatar evaluate` first")
    try:
        results = read_json(source)
    except ValueError as err:
        raise HistoryError(str(err)) from None
    jsonl, md, png = history_paths(eval_dir)
    records = read_history(jsonl)
    record = make_record(results, when or datetime.now(timezone.utc), str(source))
    append_record(jsonl, record)
    records.append(record)
    columns = select_columns(records)
    md.write_text(render_markdown(records, columns))
    render_plot(records, columns, png)
    return records


def run_history(cfg: AvatarConfig, progress: bool = True) -> None:
    """`avatar history`: append the latest evaluation (cfg.paths.eval_dir) to the nightly history."""
    records = update_history(cfg.paths.eval_dir)
    jsonl, md, _ = history_paths(cfg.paths.eval_dir)
    print(f"history: {len(records)} runs in {jsonl}; table {md}")
