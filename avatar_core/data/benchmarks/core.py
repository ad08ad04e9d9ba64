"""The machinery every benchmark adapter shares: errors, the load loop, option and path helpers.

An adapter only knows its benchmark's released layout: where the annotation file lives, how to
iterate its records and how one record maps onto a `Draft` (question, option texts, answer letter,
media files). Everything else lives here, once: id prefixes, duplicate ids, schema validation,
the media-path escape check, missing-media reporting, `limit` and `strict`.

Three outcomes per record, never a silent drop:
- accepted: a `Sample` in `BenchmarkLoad.samples`;
- rejected: malformed annotation or a missing media file, in `BenchmarkLoad.rejected` as
  `{file, record, reason}` (strict mode raises on the first malformed record instead);
- skipped: a well-formed record of a kind we do not convert (open-ended MMVU questions,
  multi-label IntentBench questions), in `BenchmarkLoad.skipped` with the same keys.
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


@dataclass
class Draft:
    """One record mapped onto the schema, before ids, validation and media checks."""

    native_id: str  # the benchmark's own id for the question; the Sample id is '<benchmark>/<native_id>'
    task: str
    question: str
    answer: str  # option letter (mc) or a number written as text (numeric)
    choices: list[str] = field(default_factory=list)
    media: list[tuple[str, str]] = field(
        default_factory=list
    )  # (source field, root-relative path); first = primary
    answer_type: str = "mc"
    has_audio: bool = True


@dataclass
class BenchmarkLoad:
    samples: list[Sample] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # {file, record, reason}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {file, record, reason}


class BenchmarkAdapter(ABC):
    """Reads one benchmark's released folder layout. Subclasses set the class attributes."""

    name: str = ""
    expects: str = ""  # the released annotation file and media folders, for error messages
    annotation_globs: tuple[tuple[str, ...], ...] = ()  # groups of globs; the first group that matches wins
    id_fields: tuple[str, ...] = ()  # record fields shown next to the record index in messages

    def annotation_files(self, root: Path) -> list[Path]:
        for group in self.annotation_globs:
            found = sorted({p for pattern in group for p in root.glob(pattern) if p.is_file()})
            if found:
                return found
        looked = ", ".join(str(root / pattern) for group in self.annotation_globs for pattern in group)
        raise BenchmarkError(
            f"{self.name}: no annotation file found under {root} (looked for {looked}); expected {self.expects}"
        )

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        """(record label, raw record) pairs; default: a JSON list or JSON Lines file."""
        for index, raw in enumerate(read_json_records(self.name, path)):
            yield self.describe(index, raw), raw

    def describe(self, index: int, raw: Any) -> str:
        label = str(index)
        if isinstance(raw, dict):
            ids = [f"{key}={raw[key]!r}" for key in self.id_fields if key in raw]
            if ids:
                label += f" ({', '.join(ids)})"
        return label

    @abstractmethod
    def convert(self, raw: Any, root: Path) -> Draft:
        """Map one raw record; raise MalformedRecordError (malformed) or UnsupportedRecordError (not converted)."""


def read_json_records(benchmark: str, path: Path) -> list[Any]:
    """A JSON list (.json) or one JSON value per line (.jsonl); a broken file is a BenchmarkError."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BenchmarkError(
                        f"{benchmark}: {path}: line {number} is not valid JSON ({exc.msg})"
                    ) from None
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(
            f"{benchmark}: {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(data, list):
        raise BenchmarkError(
            f"{benchmark}: {path}: expected a JSON list of records, got {type(data).__name__}"
        )
    return data


def require_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecordError(key, f"missing or empty (got {value!r})")
    return value.strip()


def require_dict(raw: Any, what: str = "record") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedRecordError(what, f"expected a JSON object, got {type(raw).__name__}")
    return raw


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


def first_existing_dir(root: Path, candidates: tuple[str, ...]) -> str:
    """The first candidate sub-folder of root that exists ('' when none does: media sit in root)."""
    for candidate in candidates:
        if (root / candidate).is_dir():
            return candidate
    return ""


def join_media(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _validate_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer, got {limit!r}")


def run_adapter(adapter: BenchmarkAdapter, root: Path, limit: int | None, strict: bool) -> BenchmarkLoad:
    """Convert every record of every annotation file in order until `limit` samples are accepted."""
    _validate_limit(limit)
    if not root.is_dir():
        raise BenchmarkError(
            f"{adapter.name}: benchmark folder {root} does not exist; expected {adapter.expects}"
        )
    result = BenchmarkLoad()
    seen_ids: set[str] = set()
    for path in adapter.annotation_files(root):
        for label, raw in adapter.records(path):
            if limit is not None and len(result.samples) >= limit:
                return result
            where = f"{path}: record {label}"
            entry = {"file": str(path), "record": label}
            try:
                draft = adapter.convert(raw, root)
                sample = _to_sample(adapter.name, draft, where)
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
            missing = [f"{name} -> {rel}" for name, rel in draft.media if not (root / rel).is_file()]
            if missing:
                result.rejected.append({**entry, "reason": f"missing media file(s): {'; '.join(missing)}"})
                continue
            seen_ids.add(sample.id)
            result.samples.append(sample)
    return result


def _to_sample(benchmark: str, draft: Draft, where: str) -> Sample:
    media = [safe_relative(benchmark, where, name, rel) for name, rel in draft.media]
    draft.media = list(zip([name for name, _ in draft.media], media, strict=True))
    sample = Sample(
        id=f"{benchmark}/{draft.native_id}",
        task=draft.task,
        question=draft.question,
        answer=draft.answer,
        answer_type=draft.answer_type,  # type: ignore[arg-type]
        choices=list(draft.choices),
        video=media[0] if media else "",
        extra_media=media[1:],
        has_audio=draft.has_audio,
        source=benchmark,
    )
    sample.validate(where)
    return sample
