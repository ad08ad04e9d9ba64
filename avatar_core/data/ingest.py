"""Ingestion: turn the configured data source into the Arrow layout every stage reads.

- `synthetic`: run the generator (synthetic.py) into `paths.data_dir`.
- `jsonl`: `data.path` is a JSONL file (each line one `Sample` row, with an optional `split`
  field, default train) or a folder holding train.jsonl / validation.jsonl / test.jsonl.
- `hf_dataset`: `data.path` is a folder written by `save_to_disk` (a DatasetDict, or a Dataset
  whose rows may carry a `split` column).
Each record is validated with `Sample.from_row`; its media path (and every `extra_media` path)
must resolve inside the media root (`data.media_root`, else `paths.data_dir`, the same rule the
recipes use), the video must pass the size and length limits and decode its first frame, and the
question and option texts must fit `data.max_question_chars`. Ids must be unique (they key the
replay buffer). Every record-level problem, including a line that is not UTF-8, JSON nested
deeper than the parser allows, or a path the OS refuses (a symlink loop, a NUL byte, a name too
long), is written to `data_dir/rejected.jsonl` with file, line, field and reason, and counted in
the report; none is dropped silently and none stops the ingest. A source that yields no usable
record at all is an `IngestError`, raised after the report and rejected.jsonl are written.
Media are not copied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from avatar_core.config import AvatarConfig, MediaConfig
from avatar_core.data.datasets_io import SPLITS, load_split, write_data_card, write_splits
from avatar_core.data.media import MediaError, load_frames, probe_media, resolve_media_path
from avatar_core.data.schema import RecordError, Sample, parse_json_line
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


def check_media(path: Path, media: MediaConfig) -> str:
    """'' when the file passes the limits and its first frame decodes, else the reason it does not."""
    try:
        info = probe_media(path)
        if max(info.width, info.height) > media.max_resolution:
            return f"resolution {info.width}x{info.height} exceeds max_resolution {media.max_resolution}"
        if info.duration_s > media.max_duration_s:
            return f"duration {info.duration_s:.1f}s exceeds max_duration_s {media.max_duration_s:g}"
        if not info.has_audio and not media.allow_missing_audio:
            return "no audio stream (allow_missing_audio is off)"
        load_frames(path, 1, media.max_pixels, media.backend)
    except MediaError as err:
        return err.reason
    except OSError as err:  # the OS refusing the file (permissions, I/O error) is a reason, not a crash
        return f"cannot read: {err.strerror or err}"
    return ""


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

    media = cfg.data.media
    paths = [p for _, _, p in candidates if p is not None]
    check = partial(check_media, media=media)
    bar = partial(tqdm, total=len(paths), desc="checking media", unit="file", disable=not progress)
    if cfg.data.num_workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=cfg.data.num_workers) as pool:
            reasons = dict(zip(paths, bar(pool.map(check, paths, chunksize=4)), strict=True))
    else:
        reasons = dict(zip(paths, bar(map(check, paths)), strict=True))

    splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for record, sample, media_path in candidates:
        if media_path is not None and reasons[media_path]:
            reject(record, "video", f"{sample.video}: {reasons[media_path]}")
            continue
        splits[record.split].append(sample)
    rejected.sort(key=lambda entry: (entry["file"], entry["line"]))  # media failures were found later
    return splits, rejected
