"""Turn the pipeline's metrics and evaluation files into small tables for people to read.

The stages write `results/metrics/<stage>/metrics.json` (DVC metrics) and the evaluation writes
`results/eval/results.json` (plus `results.md` when it renders one). Their exact nesting belongs
to the recipes, so this module does not assume it: `flatten_numbers` turns any JSON value into
`dotted.key -> float` pairs (lists of records are keyed by their `name`/`stage`/`checkpoint`/
`split`/`benchmark` field when they have one), and the table builders work on those pairs.
The Prefect artifacts task and the nightly history both read through here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RECORD_KEYS = ("name", "stage", "checkpoint", "split", "benchmark", "task")


def _record_label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in RECORD_KEYS:
            if isinstance(item.get(key), str) and item[key]:
                return item[key]
    return str(index)


def flatten_numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in a JSON value, keyed by its dotted path (booleans are skipped).

    >>> flatten_numbers({"s1": {"acc": 0.5, "n": 10}, "rows": [{"stage": "sft", "acc": 0.25}]})
    {'s1.acc': 0.5, 's1.n': 10.0, 'rows.sft.acc': 0.25}
    """
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        if math.isfinite(value):
            out[prefix or "value"] = float(value)
        return out
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(_record_label(v, i), v) for i, v in enumerate(value)]
    else:
        return out
    for key, child in items:
        out.update(flatten_numbers(child, f"{prefix}.{key}" if prefix else key))
    return out


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises ValueError naming the path."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def stage_metrics(metrics_dir: Path) -> dict[str, dict[str, float]]:
    """`{stage: {metric: value}}` from every `<metrics_dir>/<stage>/metrics.json` present."""
    found: dict[str, dict[str, float]] = {}
    if not metrics_dir.is_dir():
        return found
    for path in sorted(metrics_dir.glob("*/metrics.json")):
        found[path.parent.name] = flatten_numbers(read_json(path))
    return found


def metric_rows(metrics: dict[str, float]) -> list[dict[str, str | float]]:
    """Rows `{"metric", "value"}` of one stage, sorted by metric name (a Prefect table artifact)."""
    return [{"metric": key, "value": round(value, 6)} for key, value in sorted(metrics.items())]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def evaluation_markdown(eval_dir: Path) -> str | None:
    """The evaluation as Markdown: `results.md` when the evaluation wrote one, else a table of
    `results.json`'s numbers; None when neither exists."""
    md = eval_dir / "results.md"
    if md.is_file():
        return md.read_text()
    results = eval_dir / "results.json"
    if not results.is_file():
        return None
    numbers = flatten_numbers(read_json(results))
    rows = [[key, f"{value:.4g}"] for key, value in sorted(numbers.items())]
    return f"# Evaluation ({results})\n\n" + markdown_table(["metric", "value"], rows)


def artifact_key(text: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) made from `text`."""
    key = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in key.split("-") if part) or "artifact"
