"""Per-step metrics: a JSONL log that survives resumes, and the DVC metrics/plots files of a stage.

The log lives in the stage's run folder (not a DVC output) and is cut back to the last
checkpointed step when a run resumes, so a crash never leaves duplicated or orphaned steps; a
last line cut short by a crash or a full disk is dropped then. `publish` turns it into
`metrics.json` (DVC metrics: final and summary values) and `curve.csv` (DVC plots: one row per
step). Every file here is strict JSON (NaN and infinities are written as null) and the published
files are replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from avatar_core.recipes.common import strict_json, write_atomic

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
        kept = [line for line in self.read(drop_cut_last=True) if line["step"] <= step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(strict_json(record), default=_jsonable, allow_nan=False) + "\n")

    def read(self, drop_cut_last: bool = False) -> list[dict[str, Any]]:
        """The logged records; a line that is not JSON is an error naming `file:line`, except a
        last line without its newline when `drop_cut_last` (a write cut short by a crash)."""
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if drop_cut_last and number == len(lines):  # no newline after it: the write was cut
                    continue
                raise ValueError(f"{self.path}:{number}: not a JSON line ({err.msg})") from None
        return records


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return strict_json(value.item())
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


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
    summary = strict_json({**summarise(records), **(extra or {})})
    write_atomic(metrics_dir / "metrics.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    curve = io.StringIO(newline="")
    writer = csv.DictWriter(curve, fieldnames=CURVE_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in CURVE_FIELDS})
    write_atomic(metrics_dir / "curve.csv", curve.getvalue())
