"""Ingestion: turn the configured data source into the Arrow layout every stage reads.

- `synthetic`: run the generator (synthetic.py) into `paths.data_dir`.
- `jsonl`: `data.path` is a JSONL file (each line one `Sample` row, with an optional `split`
  field, default train) or a folder holding train.jsonl / validation.jsonl / test.jsonl.
- `hf_dataset`: `data.path` is a folder written by `save_to_disk` (a DatasetDict, or a Dataset
  whose rows may carry a `split` column).
Each record is validated with `Sample.from_row`; its media path (and every `extra_media` path)
must resolve inside the media root (`data.media_root`, else `paths.data_dir`, the same rule the
recipes use), and the question and option texts must fit `data.max_question_chars`. Ids must be
unique (they key the replay buffer). Then every media file is decoded once, with the media
settings of params.yaml and in `data.num_workers` processes, into the media store
(`data_dir/media_store`, store.py) that SFT, RL and evaluation read; a file that breaks a size or
length limit or fails to decode is not stored. Every record-level problem, including a line that
is not UTF-8, JSON nested deeper than the parser allows, a path the OS refuses (a symlink loop, a
NUL byte, a name too long) or media that do not decode, is written to `data_dir/rejected.jsonl`
with file, line, field and reason, and counted in the report; none is dropped silently and none
stops the ingest. A source that yields no usable record at all is an `IngestError`, raised after
the report and rejected.jsonl are written. The synthetic source goes through the same decoding
pass. Source media are not copied; the store holds the model-ready frames and audio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from avatar_core.config import AvatarConfig
from avatar_core.data.datasets_io import DATASET_DIR, SPLITS, load_split, write_data_card, write_splits
from avatar_core.data.media import MediaError, resolve_media_path
from avatar_core.data.schema import RecordError, Sample, parse_json_line
from avatar_core.data.store import store_dir
from avatar_core.data.store_build import build_store
from avatar_core.data.synthetic import generate_dataset

__all__ = ["IngestError", "IngestReport", "ingest", "load_split"]

REJECTED_FILE = "rejected.jsonl"


class IngestError(ValueError):
    """A source with no usable record; the message names the source and where the reasons are."""


@dataclass
class IngestReport:
    source: str
    out_dir: str
    good: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    rejected_path: str = ""
    media_store: dict[str, Any] = field(default_factory=dict)  # path, entries, bytes

    @property
    def total_good(self) -> int:
        return sum(self.good.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_good": self.total_good, "total_rejected": self.total_rejected}


@dataclass
class _Record:
    file: str
    line: int  # 1-based line of a JSONL file, 0-based row of an Arrow table
    split: str
    row: dict[str, Any] | None  # None: the line is not a JSON object
    problem: str = ""  # parse error when row is None


def _jsonl_records(path: Path, default_split: str | None) -> Iterator[_Record]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            row, problem = parse_json_line(raw, first=number == 1)
            if problem:
                yield _Record(str(path), number, default_split or "train", None, problem)
                continue
            if row is None and not raw.strip():
                continue
            if not isinstance(row, dict):
                yield _Record(
                    str(path), number, default_split or "train", None, "a record must be a JSON object"
                )
                continue
            yield _Record(str(path), number, default_split or str(row.pop("split", "train")), row)


def _read_jsonl(path: Path) -> Iterator[_Record]:
    if path.is_dir():
        files = {split: path / f"{split}.jsonl" for split in SPLITS if (path / f"{split}.jsonl").is_file()}
        if not files:
            raise FileNotFoundError(f"{path}: no train.jsonl, validation.jsonl or test.jsonl in this folder")
        for split, file in files.items():
            yield from _jsonl_records(file, split)
    elif path.is_file():
        yield from _jsonl_records(path, None)
    else:
        raise FileNotFoundError(f"data.path {path} does not exist")


def _read_hf(path: Path) -> Iterator[_Record]:
    import datasets

    if not path.exists():
        raise FileNotFoundError(f"data.path {path} does not exist")
    loaded = datasets.load_from_disk(str(path))
    tables = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for split, table in tables:
        for index, row in enumerate(table):
            row = dict(row)
            yield _Record(f"{path}[{split or 'rows'}]", index, split or str(row.pop("split", "train")), row)


def _field_of(message: str) -> str:
    """The field a schema error names ('field answer ...', 'missing required field(s) id, task')."""
    found = re.search(r"field\(s\) ([\w, ]+)|field (\w+)", message)
    return (found.group(1) or found.group(2)).strip() if found else ""


def _normalise_types(row: dict[str, Any]) -> tuple[str, str] | None:
    """Coerce harmless variants in place (numeric answer -> text, facts object -> JSON text);
    return (field, reason) for a value of the wrong type."""
    if isinstance(row.get("answer"), (int, float)) and not isinstance(row.get("answer"), bool):
        row["answer"] = str(row["answer"])
    if isinstance(row.get("facts"), dict):
        row["facts"] = json.dumps(row["facts"], sort_keys=True)
    for name, kind in _FIELD_TYPES.items():
        if name not in row or row[name] is None:
            continue
        value = row[name]
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return name, f"field {name} must be a list of strings, got {value!r}"
        elif not isinstance(value, kind) or (kind is str and isinstance(value, bool)):
            return name, f"field {name} must be {kind.__name__}, got {type(value).__name__} {value!r}"
    return None


_FIELD_TYPES: dict[str, type] = {
    **{f.name: str for f in fields(Sample)},
    "has_audio": bool,
    "choices": list,
    "extra_media": list,
}


def check_texts(sample: Sample, max_chars: int) -> tuple[str, str] | None:
    """(field, reason) when the question or an option text is longer than `max_chars`."""
    if len(sample.question) > max_chars:
        return (
            "question",
            f"question is {len(sample.question)} characters; data.max_question_chars is {max_chars}",
        )
    for index, choice in enumerate(sample.choices):
        if len(choice) > max_chars:
            return (
                "choices",
                f"option {index + 1} is {len(choice)} characters; data.max_question_chars is {max_chars}",
            )
    return None


def ingest(cfg: AvatarConfig, progress: bool = True) -> IngestReport:
    """Build `paths.data_dir` from `data.source` (see the module doc) and report what was kept."""
    out_dir = Path(cfg.paths.data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = IngestReport(cfg.data.source, str(out_dir), rejected_path=str(out_dir / REJECTED_FILE))
    rejected_lines: list[dict[str, Any]] = []
    if cfg.data.source == "synthetic":
        counts = generate_dataset(
            cfg.data.synthetic,
            out_dir,
            cfg.seed,
            progress,
            n_frames=cfg.data.media.n_frames,
            num_workers=cfg.data.num_workers,
        )
        report.good.update(counts)
        rejected_lines = _store_generated(cfg, progress)
        for entry in rejected_lines:
            report.good[entry["split"]] -= 1
            report.rejected[entry["split"]] += 1
    else:
        splits, rejected_lines = _ingest_records(cfg, progress)
        for split in SPLITS:
            report.good[split] = len(splits[split])
        for entry in rejected_lines:  # a record naming an unknown split is counted under that name
            report.rejected[entry["split"]] = report.rejected.get(entry["split"], 0) + 1
        write_splits(out_dir, splits)
        notes = [
            f"Ingested from {cfg.data.path} ({cfg.data.source}); media resolve in "
            f"{cfg.data.media_root or out_dir}.",
            f"Rejected records: {len(rejected_lines)} (see {REJECTED_FILE}).",
        ]
        write_data_card(out_dir, splits, "Ingested audio-visual data", notes)
    with open(out_dir / REJECTED_FILE, "w", encoding="utf-8") as handle:
        for entry in rejected_lines:
            handle.write(json.dumps(entry) + "\n")
    manifest = json.loads((store_dir(out_dir) / "store.json").read_text())
    report.media_store = {
        "path": str(store_dir(out_dir)),
        "entries": manifest["entries"],
        "bytes": manifest["frames_bytes"] + manifest["audio_bytes"],
    }
    (out_dir / "ingest.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if report.total_good == 0:
        raise IngestError(_nothing_usable(cfg, rejected_lines, out_dir / REJECTED_FILE))
    return report


def _nothing_usable(cfg: AvatarConfig, rejected: list[dict[str, Any]], rejected_path: Path) -> str:
    if not rejected:
        return f"{cfg.data.path}: no records (the source is empty); nothing to train on"
    first = "; ".join(f"{r['file']}:{r['line']}: {r['reason']}" for r in rejected[:3])
    return (
        f"{cfg.data.path}: all {len(rejected)} records were rejected (reasons in {rejected_path}; "
        f"first: {first})"
    )


def _ingest_records(
    cfg: AvatarConfig, progress: bool
) -> tuple[dict[str, list[Sample]], list[dict[str, Any]]]:
    path = Path(cfg.data.path or "")
    records = _read_jsonl(path) if cfg.data.source == "jsonl" else _read_hf(path)
    root = Path(cfg.data.media_root or cfg.paths.data_dir)
    rejected: list[dict[str, Any]] = []
    candidates: list[tuple[_Record, Sample, Path | None]] = []
    seen: dict[str, str] = {}

    def reject(record: _Record, field_name: str, reason: str) -> None:
        rejected.append(
            {
                "file": record.file,
                "line": record.line,
                "split": record.split,
                "id": (record.row or {}).get("id", ""),
                "field": field_name,
                "reason": reason,
            }
        )

    for record in records:
        where = f"{record.file}:{record.line}"
        if record.row is None:
            reject(record, "", record.problem)
            continue
        if record.split not in SPLITS:
            reject(record, "split", f"unknown split {record.split!r}; valid splits: {', '.join(SPLITS)}")
            continue
        wrong_type = _normalise_types(record.row)
        if wrong_type:
            reject(record, *wrong_type)
            continue
        try:
            sample = Sample.from_row(record.row, where=where)
        except RecordError as err:
            reject(record, _field_of(str(err)), str(err).removeprefix(f"{where}: "))
            continue
        if sample.id in seen:
            reject(record, "id", f"duplicate id {sample.id!r} (first seen at {seen[sample.id]})")
            continue
        too_long = check_texts(sample, cfg.data.max_question_chars)
        if too_long:
            reject(record, *too_long)
            continue
        seen[sample.id] = where
        media_path = None
        try:
            for extra in sample.extra_media:
                extra_path = resolve_media_path(root, extra)
                if not extra_path.is_file():
                    raise MediaError(extra, "file not found")
        except (MediaError, OSError) as err:
            reject(record, "extra_media", str(err))
            continue
        if sample.video:
            try:
                media_path = resolve_media_path(root, sample.video)
            except MediaError as err:
                reject(record, "video", str(err))
                continue
        candidates.append((record, sample, media_path))

    media_items = [(sample.video, path) for _, sample, path in candidates if path is not None]
    reasons = build_store(
        media_items, cfg.data.media, store_dir(cfg.paths.data_dir), cfg.data.num_workers, progress
    )

    splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for record, sample, media_path in candidates:
        if media_path is not None and sample.video in reasons:
            reject(record, "video", f"{sample.video}: {reasons[sample.video]}")
            continue
        splits[record.split].append(sample)
    rejected.sort(key=lambda entry: (entry["file"], entry["line"]))  # media failures were found later
    return splits, rejected


def _store_generated(cfg: AvatarConfig, progress: bool) -> list[dict[str, Any]]:
    """Decode the generated clips into the media store; samples whose clip fails are taken out of
    the splits and returned as rejected.jsonl entries."""
    out_dir = Path(cfg.paths.data_dir)
    root = Path(cfg.data.media_root or out_dir)
    splits = {split: load_split(out_dir, split) for split in SPLITS}
    items, failures = [], {}
    for sample in (s for samples in splits.values() for s in samples if s.video):
        try:
            items.append((sample.video, resolve_media_path(root, sample.video)))
        except MediaError as err:
            failures[sample.video] = err.reason
    failures |= build_store(items, cfg.data.media, store_dir(out_dir), cfg.data.num_workers, progress)
    if not failures:
        return []
    rejected = [
        {
            "file": str(out_dir / DATASET_DIR),
            "line": line,
            "split": split,
            "id": s.id,
            "field": "video",
            "reason": f"{s.video}: {failures[s.video]}",
        }
        for split, samples in splits.items()
        for line, s in enumerate(samples)
        if s.video in failures
    ]
    write_splits(
        out_dir, {split: [s for s in samples if s.video not in failures] for split, samples in splits.items()}
    )
    with open(out_dir / "README.md", "a", encoding="utf-8") as card:
        card.write(
            f"\nRejected at ingest (media failed to decode): {len(rejected)} samples, see {REJECTED_FILE}.\n"
        )
    return rejected
