"""The machinery every benchmark adapter shares: layouts, the load loop, record readers, helpers.

An adapter knows its benchmark's released layouts (the creators' release first, then the exports
that third-party loaders such as lmms-eval and VLMEvalKit produce), how one record maps onto a
`Draft` (question, option texts, answer, media candidates) and which sources it follows.
Everything else lives here, once: layout detection, id prefixes, duplicate ids, schema
validation, the media-path escape check, media lookup among candidate places, missing-media
reporting, `limit` and `strict`.

Three outcomes per record, never a silent drop:
- accepted: a `Sample` in `BenchmarkLoad.samples`;
- rejected: malformed annotation or a missing media file, in `BenchmarkLoad.rejected` as
  `{file, record, reason}` (strict mode raises on the first malformed record instead);
- skipped: a well-formed record of a kind we do not convert (open-ended MMVU questions), in
  `BenchmarkLoad.skipped` with the same keys.
A media path that escapes the benchmark root (absolute, or `..` above it) always raises: it is a
sign of a tampered or mis-pointed annotation file, not of one bad record.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from avatar_core.data.schema import OPTION_LETTERS, RecordError, Sample


class BenchmarkError(ValueError):
    """A benchmark folder, file or record that cannot be read; names benchmark, file, record, field."""


class MalformedRecordError(Exception):
    """Raised by an adapter's `convert`: this record is malformed in `field`."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"field {field_name!r}: {reason}")
        self.field_name = field_name


class UnsupportedRecordError(Exception):
    """Raised by an adapter's `convert`: a well-formed record of a kind that is not converted."""


@dataclass(frozen=True)
class Layout:
    """One way a benchmark is distributed: where its annotation file sits, described in one line."""

    key: str  # short name the adapter branches on, e.g. "creators", "lmms_eval"
    description: str  # the line logged when this layout is detected
    globs: tuple[str, ...]  # annotation files, relative to the benchmark root; the first that match win
    requires_dir: str = ""  # a folder that must also exist under the root ('' : none)


@dataclass(frozen=True)
class Context:
    """What `convert` knows besides the record: the folder, the detected layout, the file read."""

    root: Path
    layout: Layout
    file: Path

    @property
    def base(self) -> str:
        """The annotation file's folder relative to the root ('' when it sits in the root)."""
        parent = self.file.parent.relative_to(self.root).as_posix()
        return "" if parent == "." else parent


MediaRef = tuple[str, str | tuple[str, ...]]  # (source field, root-relative path or candidates in order)


@dataclass
class Draft:
    """One record mapped onto the schema, before ids, validation and media checks."""

    native_id: str  # the benchmark's own id for the question; the Sample id is '<benchmark>/<native_id>'
    task: str
    question: str
    answer: str  # option letter (mc), a number as text (numeric), letters "B,E" (multi)
    choices: list[str] = field(default_factory=list)
    media: list[MediaRef] = field(default_factory=list)  # first = primary; the first candidate found wins
    answer_type: str = "mc"
    has_audio: bool = True


@dataclass
class BenchmarkLoad:
    samples: list[Sample] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # {file, record, reason}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {file, record, reason}
    layout: str = ""  # the detected layout, one line
    files: list[str] = field(default_factory=list)  # annotation files read


class BenchmarkAdapter(ABC):
    """Reads one benchmark's released layouts. Subclasses set the class attributes."""

    name: str = ""
    expects: str = ""  # the released annotation file and media folders, for error messages
    follows: tuple[str, ...] = ()  # "repository: file" of each source the adapter follows
    layouts: tuple[Layout, ...] = ()  # in order of preference: the creators' release first
    id_fields: tuple[str, ...] = ()  # record fields shown next to the record index in messages
    # when records carry no unique id of their own: each dict record gets its index in the file
    # as `_position` (a string), which `convert` may build the sample id from
    with_position: bool = False

    def detect(self, root: Path) -> tuple[Layout, list[Path]]:
        """The first layout whose annotation files exist under `root`, with those files."""
        for layout in self.layouts:
            if layout.requires_dir and not (root / layout.requires_dir).is_dir():
                continue
            for pattern in layout.globs:
                found = sorted(p for p in root.glob(pattern) if p.is_file())
                if found:
                    return layout, found
        looked = ", ".join(dict.fromkeys(str(root / g) for layout in self.layouts for g in layout.globs))
        raise BenchmarkError(
            f"{self.name}: no annotation file found under {root} (looked for {looked}); expected {self.expects}"
        )

    def records(self, path: Path, layout: Layout) -> Iterator[tuple[str, Any]]:
        """(record label, raw record) pairs; default: a JSON list, JSON Lines or parquet file."""
        for index, raw in enumerate(read_records(self.name, path)):
            if self.with_position and isinstance(raw, dict):
                raw = {**raw, "_position": str(index)}
            yield self.describe(index, raw), raw

    def describe(self, index: int, raw: Any) -> str:
        label = str(index)
        if isinstance(raw, dict):
            ids = [f"{key}={raw[key]!r}" for key in self.id_fields if key in raw]
            if ids:
                label += f" ({', '.join(ids)})"
        return label

    @abstractmethod
    def convert(self, raw: Any, ctx: Context) -> Draft:
        """Map one raw record; raise MalformedRecordError (malformed) or UnsupportedRecordError (not converted)."""


# --------------------------------------------------------------------------- record readers


def read_records(benchmark: str, path: Path) -> list[Any]:
    """Records of a JSON list (.json), JSON Lines (.jsonl) or parquet file; a broken file is a BenchmarkError."""
    if path.suffix == ".parquet":
        return read_parquet_rows(benchmark, path)
    return read_json_records(benchmark, path)


def read_parquet_rows(benchmark: str, path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise BenchmarkError(f"{benchmark}: {path}: not a readable parquet file ({exc})") from None


def read_json_value(benchmark: str, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(
            f"{benchmark}: {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None


def read_json_records(benchmark: str, path: Path) -> list[Any]:
    """A JSON list (.json) or one JSON value per line (.jsonl)."""
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BenchmarkError(
                        f"{benchmark}: {path}: line {number} is not valid JSON ({exc.msg})"
                    ) from None
        return rows
    data = read_json_value(benchmark, path)
    if not isinstance(data, list):
        raise BenchmarkError(
            f"{benchmark}: {path}: expected a JSON list of records, got {type(data).__name__}"
        )
    return data


# --------------------------------------------------------------------------- field helpers


def require_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecordError(key, f"missing or empty (got {value!r})")
    return value.strip()


def require_dict(raw: Any, what: str = "record") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedRecordError(what, f"expected a JSON object, got {type(raw).__name__}")
    return raw


def require_id(raw: dict[str, Any], key: str) -> str:
    """A question id given as an integer or a non-empty string (booleans and floats are refused)."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise MalformedRecordError(key, f"expected an integer or string question id, got {value!r}")
    return str(value).strip()


_PREFIX = re.compile(r"^\s*\(?([A-Za-z])\s*[\.\):：]\s*")


def strip_option_letters(options: list[str]) -> list[str]:
    """Drop 'A. ' / '(B) ' / 'C: ' prefixes, but only when every option carries its own letter in order.

    >>> strip_option_letters(["A. cat", "B. dog"])
    ['cat', 'dog']
    >>> strip_option_letters(["A. Lincoln", "Washington"])
    ['A. Lincoln', 'Washington']
    """
    matches = [_PREFIX.match(text) for text in options]
    if all(m and m.group(1).upper() == OPTION_LETTERS[i] for i, m in enumerate(matches)):
        return [text[m.end() :].strip() for text, m in zip(options, matches, strict=True)]  # type: ignore[union-attr]
    return [text.strip() for text in options]


def option_list(raw: dict[str, Any], key: str, minimum: int = 2) -> list[str]:
    """A list of option strings, prefixes stripped; at most len(OPTION_LETTERS) options."""
    value = raw.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise MalformedRecordError(key, f"expected a list of non-empty option strings, got {value!r}")
    if not minimum <= len(value) <= len(OPTION_LETTERS):
        raise MalformedRecordError(
            key, f"expected {minimum} to {len(OPTION_LETTERS)} options, got {len(value)}"
        )
    return strip_option_letters(value)


def option_dict(raw: dict[str, Any], key: str) -> list[str]:
    """Options released as {"A": text, "B": text, ...}; empty trailing options are dropped."""
    value = raw.get(key)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedRecordError(key, f"expected an object mapping option letters to texts, got {value!r}")
    texts = {str(k).strip().upper(): v.strip() for k, v in value.items() if v.strip()}
    letters = sorted(texts)
    if letters != list(OPTION_LETTERS[: len(letters)]) or len(letters) < 2:
        raise MalformedRecordError(
            key, f"option letters must run A, B, ... without gaps (at least 2), got {letters}"
        )
    return [texts[letter] for letter in letters]


_LETTER_ANSWER = re.compile(r"^\(?([A-Za-z])\)?(?:\s*[\.\):：].*)?$", re.DOTALL)


def answer_letter(value: Any, choices: list[str], key: str = "answer") -> str:
    """The option letter of an answer given as a letter ('C', '(C)', 'C. text') or as the option text."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecordError(key, f"missing or empty answer (got {value!r})")
    text = value.strip()
    letters = OPTION_LETTERS[: len(choices)]
    match = _LETTER_ANSWER.match(text)
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    exact = [i for i, choice in enumerate(choices) if choice == text]
    if len(exact) != 1:
        exact = [i for i, choice in enumerate(choices) if choice.lower() == text.lower()]
    if len(exact) == 1:
        return OPTION_LETTERS[exact[0]]
    raise MalformedRecordError(
        key, f"answer {text!r} is neither an option letter in {letters} nor one option text"
    )


def safe_relative(benchmark: str, where: str, field_name: str, value: str) -> str:
    """A root-relative POSIX path; absolute paths and '..' escapes raise BenchmarkError."""
    text = value.strip().replace("\\", "/")
    escape = PurePosixPath(text).is_absolute() or PureWindowsPath(value.strip()).is_absolute()
    normal = os.path.normpath(text) if text else ""
    if escape or not text or normal == ".." or normal.startswith("../"):
        raise BenchmarkError(
            f"{benchmark}: {where}: field {field_name!r}: media path {value!r} does not stay inside the "
            "benchmark root (absolute paths and '..' are refused)"
        )
    return PurePosixPath(normal).as_posix()


def join_media(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _validate_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer, got {limit!r}")


# --------------------------------------------------------------------------- the load loop


def run_adapter(adapter: BenchmarkAdapter, root: Path, limit: int | None, strict: bool) -> BenchmarkLoad:
    """Convert every record of every annotation file in order until `limit` samples are accepted."""
    _validate_limit(limit)
    if not root.is_dir():
        raise BenchmarkError(
            f"{adapter.name}: benchmark folder {root} does not exist; expected {adapter.expects}"
        )
    layout, files = adapter.detect(root)
    result = BenchmarkLoad(layout=layout.description, files=[str(p) for p in files])
    seen_ids: set[str] = set()
    for path in files:
        ctx = Context(root, layout, path)
        for label, raw in adapter.records(path, layout):
            if limit is not None and len(result.samples) >= limit:
                return result
            where = f"{path}: record {label}"
            entry = {"file": str(path), "record": label}
            try:
                draft = adapter.convert(raw, ctx)
                sample, media = _to_sample(adapter.name, draft, where, root)
                if sample.id in seen_ids:
                    raise MalformedRecordError("id", f"duplicate question id {draft.native_id!r}")
            except UnsupportedRecordError as skip:
                result.skipped.append({**entry, "reason": str(skip)})
                continue
            except (MalformedRecordError, RecordError) as problem:
                reason = str(problem).removeprefix(f"{where}: ")
                if strict:
                    raise BenchmarkError(f"{adapter.name}: {where}: {reason}") from None
                result.rejected.append({**entry, "reason": reason})
                continue
            missing = [f"{name} -> {' or '.join(tried)}" for name, tried in media if isinstance(tried, tuple)]
            if missing:
                result.rejected.append({**entry, "reason": f"missing media file(s): {'; '.join(missing)}"})
                continue
            seen_ids.add(sample.id)
            result.samples.append(sample)
    return result


def _to_sample(
    benchmark: str, draft: Draft, where: str, root: Path
) -> tuple[Sample, list[tuple[str, str | tuple[str, ...]]]]:
    """The Sample of a draft, and per media field the path found (str) or the places tried (tuple)."""
    resolved: list[tuple[str, str | tuple[str, ...]]] = []
    for name, candidates in draft.media:
        options = (candidates,) if isinstance(candidates, str) else candidates
        paths = tuple(dict.fromkeys(safe_relative(benchmark, where, name, rel) for rel in options))
        found = next((rel for rel in paths if (root / rel).is_file()), None)
        resolved.append((name, found if found is not None else paths))
    chosen = [value if isinstance(value, str) else value[0] for _, value in resolved]
    sample = Sample(
        id=f"{benchmark}/{draft.native_id}",
        task=draft.task,
        question=draft.question,
        answer=draft.answer,
        answer_type=draft.answer_type,  # type: ignore[arg-type]
        choices=list(draft.choices),
        video=chosen[0] if chosen else "",
        extra_media=chosen[1:],
        has_audio=draft.has_audio,
        source=benchmark,
    )
    sample.validate(where)
    return sample, resolved
