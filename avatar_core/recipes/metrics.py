"""Per-step metrics: a JSONL log that survives resumes, and the DVC metrics/plots files of a stage.

The log lives in the stage's run folder (not a DVC output) and is cut back to the last
checkpointed step when a run resumes, so a crash never leaves duplicated or orphaned steps.
`publish` turns it into `metrics.json` (DVC metrics: final and summary values) and `curve.csv`
(DVC plots: one row per step).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

CURVE_FIELDS = (
    "step",
    "completions",
    "reward_mean",
    "accuracy",
    "format",
    "zero_adv_frac_before",
    "zero_adv_frac_after",
    "kl_mean",
    "hint_rate",
    "replay_rows",
    "loss",
)


class StepLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (they belong to work the checkpoint does not contain)."""
        if not self.path.is_file():
            return
        kept = [line for line in self.read() if line["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def summarise(records: list[dict[str, Any]], tail: int = 10) -> dict[str, Any]:
    """Final counters plus means over the first and last `tail` steps (the learning signal at a glance)."""
    if not records:
        return {}
    last = records[-1]
    summary: dict[str, Any] = {"steps": last["step"], "completions": last["completions"]}
    for key in (
        "reward_mean",
        "accuracy",
        "format",
        "zero_adv_frac_before",
        "zero_adv_frac_after",
        "hint_rate",
    ):
        if key in last:
            summary[f"{key}_first{tail}"] = _mean([r.get(key) for r in records[:tail]])
            summary[f"{key}_last{tail}"] = _mean([r.get(key) for r in records[-tail:]])
    for key in ("buffer_easy", "buffer_medium", "buffer_hard"):
        if key in last:
            summary[key] = last[key]
    return summary


def publish(
    records: list[dict[str, Any]], metrics_dir: str | Path, extra: dict[str, Any] | None = None
) -> None:
    metrics_dir = Path(metrics_dir)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    summary = {**summarise(records), **(extra or {})}
    (metrics_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (metrics_dir / "curve.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({k: r.get(k, "") for k in CURVE_FIELDS})
