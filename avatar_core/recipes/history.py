"""Nightly evaluation history: append the latest evaluation to a JSON-lines log and render it.

`avatar history` (run by the `nightly-eval` flow after the forced re-evaluation) reads
`<eval_dir>/metrics.json` (the evaluation's compact `{stage: {set: accuracy}}` plus each
benchmark's official metrics under `official.<benchmark>.<stage>`; `results.json` when there is
none), appends one record `{"time", "source", "metrics", "benchmarks"}` to
`<parent of eval_dir>/history.jsonl` (results/history.jsonl by default), then rewrites
`history.md` and `history.png` beside it. Pure file I/O and matplotlib: no model, no
orchestration. The evaluation's JSON layout belongs to the evaluation recipe; records keep every
number in it under its dotted path. The first table and plot panel show the accuracy-like keys
(containing "acc", or all when none do) without the blank-media controls and the official
metrics; then one table and one panel per benchmark with its official metrics for the last
stage evaluated. `benchmarks` holds what `results.json` reports per configured benchmark
(status, layout, records read / rejected, or why it was not evaluated), so a missing benchmark
folder shows in history.md instead of failing the run.
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
OFFICIAL = "official"
REPORT_KEYS = ("status", "layout", "read", "rejected", "skipped", "undecodable", "reason")


class HistoryError(ValueError):
    """A history or evaluation file that cannot be used; the message names the file and line."""


def history_paths(eval_dir: str | Path) -> tuple[Path, Path, Path]:
    """(history.jsonl, history.md, history.png) beside the evaluation folder."""
    parent = Path(eval_dir).parent
    return (parent / f"{HISTORY_NAME}.jsonl", parent / f"{HISTORY_NAME}.md", parent / f"{HISTORY_NAME}.png")


def make_record(
    results: Any, when: datetime, source: str, benchmarks: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One history entry: the UTC time, where the numbers came from, every number flattened, and
    the evaluation's per-benchmark report (record lists left out)."""
    if not isinstance(results, dict):
        raise HistoryError(
            f"{source}: expected a JSON object of evaluation results, got {type(results).__name__}"
        )
    metrics = flatten_numbers(results)
    if not metrics:
        raise HistoryError(f"{source}: holds no numbers to record")
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = {
        name: {k: v for k, v in entry.items() if k in REPORT_KEYS}
        for name, entry in (benchmarks or {}).items()
        if isinstance(entry, dict)
    }
    return {"time": stamp, "source": source, "metrics": metrics, "benchmarks": report}


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
    """Metric keys of the first table, in the latest record's order: accuracy-like keys (last part
    contains 'acc') when there are any, else all; blank-media controls dropped unless nothing else
    is left; per-family keys (`set/family`) left to history.jsonl, benchmark sets and official
    metrics to the per-benchmark tables."""
    if not records:
        return []
    benches = set(records[-1].get("benchmarks", {}))
    keys = [
        k
        for k in records[-1]["metrics"]
        if not k.startswith(f"{OFFICIAL}.") and _set_name(k) not in benches and "/" not in k
    ]
    accuracy = [k for k in keys if "acc" in k.rsplit(".", 1)[-1].lower()]
    chosen = accuracy or keys
    with_media = [k for k in chosen if "blank" not in k.lower()]
    return (with_media or chosen)[:max_columns]


def official_columns(records: list[dict[str, Any]]) -> dict[str, tuple[str, list[str]]]:
    """Per benchmark in any of `records`: (its last evaluated stage, the official metric keys of that
    stage, then our accuracy on it), taken from the newest record that has the benchmark, so a
    benchmark missing from the latest run keeps its table (with '-' for that run)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for record in reversed(records):
        metrics = record["metrics"]
        stages: dict[str, list[str]] = {}
        for key in metrics:
            parts = key.split(".")
            if parts[0] == OFFICIAL and len(parts) == 4 and parts[1] not in out:
                seen = stages.setdefault(parts[1], [])
                if parts[2] not in seen:
                    seen.append(parts[2])
        for bench, seen in stages.items():
            prefix = f"{OFFICIAL}.{bench}.{seen[-1]}."
            ours = [f"{seen[-1]}.{bench}"] if f"{seen[-1]}.{bench}" in metrics else []
            out[bench] = (seen[-1], [k for k in metrics if k.startswith(prefix)] + ours)
    return out


def _label(key: str) -> str:
    """Column name of an official key (its metric) or of our accuracy on the benchmark."""
    return key.rsplit(".", 1)[-1] if key.startswith(f"{OFFICIAL}.") else "our_acc"


def _table(records: list[dict[str, Any]], columns: list[str], names: list[str]) -> str:
    body = [
        [r["time"], *(f"{r['metrics'][c]:.4g}" if c in r["metrics"] else "-" for c in columns)]
        for r in records
    ]
    return markdown_table(["time", *names], body)


def _set_name(key: str) -> str:
    """The evaluation set a `stage.set[_control][/family]` key belongs to."""
    name = key.rsplit(".", 1)[-1].split("/", 1)[0]
    for control in ("_blank_media", "_blank_video", "_blank_audio", "_blank"):
        name = name.removesuffix(control)
    return name


def render_markdown(records: list[dict[str, Any]], columns: list[str], rows: int = TABLE_ROWS) -> str:
    """Markdown tables of the latest `rows` records (newest last); '-' where a run lacks a metric:
    the tracked accuracies, then each benchmark's official metrics and what the latest run read."""
    shown = records[-rows:]
    title = f"# Nightly evaluation history ({len(records)} runs, latest {min(rows, len(records))} shown)\n\n"
    parts = [title + _table(shown, columns, columns)]
    report = records[-1].get("benchmarks", {}) if records else {}
    for bench, (stage, keys) in official_columns(records).items():
        info = report.get(bench, {})
        read = (
            f"; latest run: {info['read']} records read, {info['rejected']} rejected"
            if "read" in info
            else ""
        )
        layout = f"\n\nLayout: {info['layout']}" if info.get("layout") else ""
        names = [_label(k) for k in keys]
        parts.append(
            f"## {bench}: official metrics, stage {stage}{read}{layout}\n\n" + _table(shown, keys, names)
        )
    missing = [
        f"- {name}: {info.get('reason', info.get('status'))}"
        for name, info in report.items()
        if info.get("status") != "evaluated"
    ]
    if missing:
        parts.append("## Benchmarks not evaluated in the latest run\n\n" + "\n".join(missing) + "\n")
    return "\n".join(parts)


def _lines(ax, records: list[dict[str, Any]], columns: list[str], labels: list[str]) -> None:
    for column, label in zip(columns, labels, strict=True):
        points = [(i, r["metrics"][column]) for i, r in enumerate(records) if column in r["metrics"]]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label)


def render_plot(records: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """One panel of the tracked accuracies, then one per benchmark with its official metrics
    (error metrics such as MAE on a second axis); x labelled with the run dates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = official_columns(records)
    fig, axes = plt.subplots(1 + len(benches), 1, figsize=(8, 4.5 + 3 * len(benches)), squeeze=False)
    panels = [("Nightly evaluation history", columns, columns)]
    for bench, (stage, keys) in benches.items():
        keys = [k for k in keys if not k.endswith(".n")]
        panels.append((f"{bench} (official, stage {stage})", keys, [_label(k) for k in keys]))
    ticks = list(range(0, len(records), max(1, len(records) // 8)))
    for ax, (title, keys, labels) in zip(axes[:, 0], panels, strict=True):
        rates = [(k, n) for k, n in zip(keys, labels, strict=True) if "acc" in n]
        errors = [(k, n) for k, n in zip(keys, labels, strict=True) if "acc" not in n]
        if ax is axes[0, 0]:
            rates, errors = list(zip(keys, labels, strict=True)), []
        _lines(ax, records, [k for k, _ in rates], [n for _, n in rates])
        if errors:
            twin = ax.twinx()
            twin.set_prop_cycle(color=["tab:red", "tab:purple", "tab:brown"])
            _lines(twin, records, [k for k, _ in errors], [n for _, n in errors])
            twin.set_ylabel("error")
            twin.legend(fontsize="small", loc="upper right")
        ax.set_xticks(ticks, [records[i]["time"][:10] for i in ticks], rotation=30, ha="right")
        ax.set_ylabel("value")
        ax.set_title(title)
        if rates:
            ax.legend(fontsize="small", loc="upper left")
    axes[-1, 0].set_xlabel("nightly run")
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
    record = make_record(
        results, when or datetime.now(timezone.utc), str(source), _benchmark_report(eval_dir)
    )
    append_record(jsonl, record)
    records.append(record)
    columns = select_columns(records)
    md.write_text(render_markdown(records, columns))
    render_plot(records, columns, png)
    return records


def _benchmark_report(eval_dir: str | Path) -> dict[str, Any]:
    """The evaluation's per-benchmark report (results.json `benchmarks`), {} when there is none."""
    path = Path(eval_dir) / "results.json"
    if not path.is_file():
        return {}
    try:
        report = read_json(path).get("benchmarks", {})
    except (ValueError, AttributeError):
        return {}
    return report if isinstance(report, dict) else {}


def run_history(cfg: AvatarConfig, progress: bool = True) -> None:
    """`avatar history`: append the latest evaluation (cfg.paths.eval_dir) to the nightly history."""
    records = update_history(cfg.paths.eval_dir)
    jsonl, md, _ = history_paths(cfg.paths.eval_dir)
    print(f"history: {len(records)} runs in {jsonl}; table {md}")
