"""The on-disk layout of an ingested data set, and its data card.

A data folder holds `dataset/` (a Hugging Face `DatasetDict` saved with `save_to_disk`, splits
train / validation / test, one column per `Sample` field), the media the records point to (for
the synthetic set: `media/*.mp4`, paths relative to the folder), `rejected.jsonl` for ingested
sources, and `README.md`, the data card: counts per split and task, answer balance, difficulty
mix, and the chance level of each task.
"""

from __future__ import annotations

import json
import typing
from collections import Counter, defaultdict
from dataclasses import fields
from pathlib import Path

import datasets

from avatar_core.data.schema import Sample

SPLITS = ("train", "validation", "test")
DATASET_DIR = "dataset"


def sample_features() -> datasets.Features:
    """Arrow column types of the `Sample` fields (lists are lists of strings)."""
    hints = typing.get_type_hints(Sample)
    columns: dict[str, object] = {}
    for f in fields(Sample):
        kind = hints[f.name]
        if kind is bool:
            columns[f.name] = datasets.Value("bool")
        elif typing.get_origin(kind) is list:
            columns[f.name] = datasets.List(datasets.Value("string"))
        else:
            columns[f.name] = datasets.Value("string")
    return datasets.Features(columns)


def write_splits(out_dir: str | Path, splits: dict[str, list[Sample]]) -> Path:
    """Save the samples of each split to `out_dir/dataset`. Splits without samples are left out:
    `datasets` 5 writes an empty split that `load_from_disk` then cannot read back (IndexError in
    its table concatenation, measured); `load_split` returns [] for them."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; valid splits: {', '.join(SPLITS)}")
    features = sample_features()
    tables = {}
    for split in SPLITS:
        rows = [s.to_row() for s in splits.get(split, [])]
        if not rows:
            continue
        columns = {name: [row[name] for row in rows] for name in features}
        tables[split] = datasets.Dataset.from_dict(columns, features=features, split=split)
    target = Path(out_dir) / DATASET_DIR
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per split and shard is noise in pipeline logs
    try:
        datasets.DatasetDict(tables).save_to_disk(str(target))
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return target


def load_split(data_dir: str | Path, split: str) -> list[Sample]:
    """The samples of one split of a data folder written by `ingest` or `generate_dataset`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    folder = Path(data_dir) / DATASET_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no data set here; run `avatar ingest` first")
    table = datasets.load_from_disk(str(folder))
    if split not in table:  # written without samples
        return []
    return [Sample.from_row(row, where=f"{folder}[{split}][{i}]") for i, row in enumerate(table[split])]


# --------------------------------------------------------------------------- data card


def _chance(group: list[Sample]) -> float:
    if group[0].answer_type == "mc":
        return sum(1 / len(s.choices) for s in group) / len(group)
    return Counter(s.answer for s in group).most_common(1)[0][1] / len(group)


def task_summary(samples: list[Sample]) -> dict[str, dict]:
    """Per task: count, stage, answer type, and per difficulty the answer counts and chance level.

    Chance for multiple choice is the mean of 1 / options (a uniform guess); for numeric answers
    it is the exact-match accuracy of always answering the most common value.
    """
    by_task: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_task[s.task].append(s)
    summary = {}
    for task, group in sorted(by_task.items()):
        levels: dict[str, list[Sample]] = defaultdict(list)
        for s in group:
            levels[s.difficulty or "unknown"].append(s)
        summary[task] = {
            "count": len(group),
            "stage": group[0].stage,
            "answer_type": group[0].answer_type,
            "chance": round(_chance(group), 4),
            "difficulty": {
                level: {
                    "count": len(members),
                    "answers": dict(sorted(Counter(s.answer for s in members).items())),
                    "chance": round(_chance(members), 4),
                }
                for level, members in sorted(levels.items())
            },
        }
    return summary


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def write_data_card(
    out_dir: str | Path, splits: dict[str, list[Sample]], title: str, notes: list[str]
) -> Path:
    """Write `out_dir/README.md` (and `stats.json` with the same numbers) describing the splits."""
    out_dir = Path(out_dir)
    stats = {split: task_summary(samples) for split, samples in splits.items()}
    lines = [f"# {title}", "", *notes, "", "## Samples per split", ""]
    tasks = sorted({t for per_task in stats.values() for t in per_task})
    rows = [[t, *(stats[s].get(t, {}).get("count", 0) for s in splits)] for t in tasks]
    rows.append(["total", *(len(samples) for samples in splits.values())])
    lines += _table(["task", *splits], rows)
    for split, per_task in stats.items():
        if not per_task:
            continue
        lines += ["", f"## {split}: answers, difficulty, chance", ""]
        rows = []
        for t, info in per_task.items():
            rows.append([t, info["stage"], info["answer_type"], "all", info["count"], "", info["chance"]])
            for level, part in info["difficulty"].items():
                rows.append(["", "", "", level, part["count"], _fmt(part["answers"]), part["chance"]])
        lines += _table(["task", "stage", "type", "difficulty", "samples", "answer counts", "chance"], rows)
    lines += ["", "Chance: multiple choice = mean of 1/options; numeric = share of the most common answer."]
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    card = out_dir / "README.md"
    card.write_text("\n".join(lines) + "\n")
    return card


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())
