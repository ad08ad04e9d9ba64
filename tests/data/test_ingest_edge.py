"""The bad-input edge of ingestion: whatever one record holds (bytes that are not UTF-8, JSON nested past
the parser's limit, a path the OS refuses, a non-finite numeric answer, an over-long question), it
becomes a rejected record with a reason and the ingest goes on; a source with nothing usable is one
clear error, raised after rejected.jsonl is written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from avatar_core.config import AvatarConfig
from avatar_core.data.datasets_io import load_split
from avatar_core.data.ingest import IngestError, ingest
from avatar_core.data.media import MediaError, resolve_media_path
from avatar_core.data.schema import parse_json_line

MC = {"task": "t", "question": "q", "answer": "A", "choices": ["x", "y"]}
NUM = {"task": "count", "question": "How many?", "answer_type": "numeric"}


def _line(**fields) -> bytes:
    return json.dumps(fields).encode()


# (line bytes, field, reason fragment); the media root holds clips/ok.mp4 and a symlink loop "loop"
BAD: list[tuple[bytes, str, str]] = [
    (_line(id="b1", video="loop", **MC), "video", "cannot resolve the media path: Symlink loop"),
    (_line(id="b2", video="clips/a\x00b.mp4", **MC), "video", "media path contains a NUL byte"),
    (_line(id="b3", video="x" * 300 + ".mp4", **MC), "video", "File name too long"),
    (_line(id="b4", video=("d" * 250 + "/") * 20 + "f.mp4", **MC), "video", "File name too long"),
    (b'{"id": "b5", "task": "t", "question": "\xff\xfe", "answer": "A", "choices": ["x", "y"]}', "",
     "not UTF-8 text (byte 0xff at column"),
    (b"[" * 100_000 + b"]" * 100_000, "", "JSON nested deeper than the parser's recursion limit"),
    (b'{"id": "b7", "n": ' + b"9" * 5000 + b"}", "", "not usable JSON: Exceeds the limit (4300 digits)"),
    (_line(id="b8", answer="nan", **NUM), "answer", "field answer 'nan' is not a finite number"),
    (_line(id="b9", answer="inf", **NUM), "answer", "field answer 'inf' is not a finite number"),
    (_line(id="b10", answer="-Infinity", **NUM), "answer", "is not a finite number"),
    (b'{"id": "b11", "task": "c", "question": "q", "answer_type": "numeric", "answer": 1e999}', "answer",
     "field answer 'inf' is not a finite number"),
    (b'{"id": "b12", "task": "c", "question": "q", "answer_type": "numeric", "answer": NaN}', "answer",
     "field answer 'nan' is not a finite number"),
    (_line(id="b13", task="t", question="q", answer="A", choices=[str(i) for i in range(11)]), "choices",
     "field choices has 11 options; at most 10 (A-J)"),
    (_line(id="b14", task="t", question="q" * 4001, answer="A", choices=["x", "y"]), "question",
     "question is 4001 characters; data.max_question_chars is 4000"),
    (_line(id="b15", task="t", question="q", answer="A", choices=["x", "y" * 5000]), "choices",
     "option 2 is 5000 characters"),
    (_line(id="b16", extra_media=["../outside.wav"], **MC), "extra_media", "path escapes the media root"),
    (_line(id="b17", extra_media=["/etc/passwd"], **MC), "extra_media", "absolute media paths are not allowed"),
    (_line(id="b18", extra_media=["clips/gone.wav"], **MC), "extra_media", "clips/gone.wav: file not found"),
    (_line(id="b19", extra_media=["loop"], **MC), "extra_media", "Symlink loop"),
]  # fmt: skip


@pytest.fixture
def media_root(tmp_path, media_dir) -> Path:
    root = tmp_path / "media_root"
    (root / "clips").mkdir(parents=True)
    shutil.copy(media_dir / "indexed.mp4", root / "clips" / "ok.mp4")
    (root / "clips" / "ok.wav").write_bytes(b"RIFF")
    os.symlink("loop", root / "loop")  # points at itself
    (tmp_path / "outside.wav").write_bytes(b"RIFF")
    return root


def _config(tmp_path: Path, source: Path, media_root: Path) -> AvatarConfig:
    return AvatarConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "out")},
            "data": {"source": "jsonl", "path": str(source), "media_root": str(media_root), "num_workers": 0},
        }
    )


def _rejected(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]


def test_every_record_level_problem_is_a_rejected_record(tmp_path: Path, media_root: Path) -> None:
    good = [
        _line(id="g1", video="clips/ok.mp4", extra_media=["clips/ok.wav"], **MC),
        _line(id="g2", answer="1e3", **NUM),  # a finite number in exponent notation is fine
    ]
    source = tmp_path / "records.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b"\n".join(good + [line for line, _, _ in BAD]) + b"\n")  # BOM first
    report = ingest(_config(tmp_path, source, media_root), progress=False)
    assert report.good["train"] == 2 and report.total_rejected == len(BAD)
    rejected = _rejected(tmp_path)
    for number, entry, (_, field, reason) in zip(range(3, 3 + len(BAD)), rejected, BAD, strict=True):
        assert entry["line"] == number and entry["file"] == str(source), entry
        assert entry["field"] == field and reason in entry["reason"], (reason, entry)
    assert [s.id for s in load_split(tmp_path / "out", "train")] == ["g1", "g2"]


def test_the_same_records_from_several_workers(tmp_path: Path, media_root: Path) -> None:
    lines = [_line(id="g1", video="clips/ok.mp4", **MC), _line(id="g2", video="clips/ok.mp4", **MC)]
    source = tmp_path / "records.jsonl"
    source.write_bytes(b"\n".join(lines + [BAD[0][0], BAD[2][0]]) + b"\n")
    cfg = _config(tmp_path, source, media_root)
    cfg.data.num_workers = 2
    report = ingest(cfg, progress=False)
    assert report.good["train"] == 2 and report.total_rejected == 2


def test_empty_source_is_an_error_before_any_training(tmp_path: Path, media_root: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_bytes(b"\n  \n")
    with pytest.raises(
        IngestError, match=r"empty.jsonl: no records \(the source is empty\); nothing to train on"
    ):
        ingest(_config(tmp_path, source, media_root), progress=False)


def test_all_rejected_is_an_error_naming_the_reasons(tmp_path: Path, media_root: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(line for line, _, _ in BAD[:4]) + b"\n")
    with pytest.raises(IngestError) as caught:
        ingest(_config(tmp_path, source, media_root), progress=False)
    message = str(caught.value)
    assert message.startswith(
        f"{source}: all 4 records were rejected (reasons in {tmp_path / 'out' / 'rejected.jsonl'}"
    )
    assert f"first: {source}:1: loop: cannot resolve the media path" in message
    assert len(_rejected(tmp_path)) == 4  # the reasons are on disk when the error is raised


def test_resolve_media_path_turns_os_errors_into_media_errors(tmp_path: Path) -> None:
    os.symlink("a", tmp_path / "b")
    os.symlink("b", tmp_path / "a")  # a two-link loop
    for relative, reason in [
        ("a/clip.mp4", "Symlink loop"),
        ("n\x00ul.mp4", "NUL byte"),
        ("y" * 5000, "File name too long"),
    ]:
        with pytest.raises(MediaError, match=reason) as caught:
            resolve_media_path(tmp_path, relative)
        assert len(caught.value.path) < 200  # an absurd path is shortened in the message


@pytest.mark.parametrize(
    ("raw", "value", "problem"),
    [
        (b"", None, ""),
        (b'{"a": 1}\n', {"a": 1}, ""),
        (b'\xef\xbb\xbf{"a": 1}', None, "not valid JSON"),  # a BOM is only allowed on the first line
        (b"\xc3\x28", None, "not UTF-8 text (byte 0xc3 at column 1)"),
        (b"[" * 50_000, None, "recursion limit"),
        (b"1" * 5000, None, "Exceeds the limit"),
    ],
)
def test_parse_json_line_never_raises(raw: bytes, value, problem: str) -> None:
    parsed, why = parse_json_line(raw)
    assert parsed == value and problem in why and (why == "") == (problem == "")
