"""Ingestion of JSONL and Arrow sources (good and bad records) and of the synthetic generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest

from avatar_core.config import AvatarConfig, MediaConfig
from avatar_core.data.datasets_io import load_split
from avatar_core.data.ingest import ingest
from avatar_core.data.schema import Sample
from avatar_core.data.store_build import decode_for_store

GOOD = [
    {"id": "q1", "task": "avqa", "question": "What sounds?", "answer": "B", "choices": ["dog", "car"],
     "video": "clips/indexed.mp4", "split": "train", "facts": {"object": "car"}},
    {"id": "q2", "task": "count", "question": "How many?", "answer": 3, "answer_type": "numeric",
     "video": "clips/silent.mp4", "split": "validation"},
    {"id": "q3", "task": "text", "question": "Pick one.", "answer": "A", "choices": ["x", "y"], "split": "test"},
]  # fmt: skip
BAD = [  # (line text, field, reason fragment)
    ("{not json", "", "not valid JSON"),
    ('[1, 2]', "", "a record must be a JSON object"),
    ('{"id": "b1", "task": "t", "answer": "A", "choices": ["x", "y"]}', "question", "missing required field(s) question"),
    ('{"id": "b2", "task": "t", "question": "q", "answer": "E", "choices": ["x", "y"]}', "answer",
     "field answer 'E' is not one of the option letters AB"),
    ('{"id": "b3", "task": "t", "question": "q", "answer": "A", "choices": "xy"}', "choices",
     "field choices must be a list of strings, got 'xy'"),
    ('{"id": "b4", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"], "facts": "[1]"}', "facts",
     "field facts must be a JSON object"),
    ('{"id": "q1", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"]}', "id", "duplicate id 'q1'"),
    ('{"id": "b5", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"], "video": "../escape.mp4"}',
     "video", "path escapes the media root"),
    ('{"id": "b6", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"], "video": "clips/gone.mp4"}',
     "video", "clips/gone.mp4: file not found"),
    ('{"id": "b7", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"], "video": "clips/bad.mp4"}',
     "video", "clips/bad.mp4: cannot be opened as media"),
    ('{"id": "b8", "task": "t", "question": "q", "answer": "A", "choices": ["x", "y"], "split": "dev"}', "split",
     "unknown split 'dev'"),
    ('{"id": "b9", "task": "t", "question": "q", "answer": "1", "answer_type": "numeric", "has_audio": "yes"}',
     "has_audio", "field has_audio must be bool, got str 'yes'"),
]  # fmt: skip


@pytest.fixture
def media_root(tmp_path, media_dir) -> Path:
    root = tmp_path / "media_root"
    (root / "clips").mkdir(parents=True)
    shutil.copy(media_dir / "indexed.mp4", root / "clips" / "indexed.mp4")
    shutil.copy(media_dir / "silent_track_missing.mp4", root / "clips" / "silent.mp4")
    (root / "clips" / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x17" * 300)
    (tmp_path / "escape.mp4").write_bytes((media_dir / "indexed.mp4").read_bytes())  # exists, but outside
    return root


def _config(
    tmp_path: Path, source: str, path: Path, media_root: Path, workers: int = 0, **media
) -> AvatarConfig:
    return AvatarConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "out")},
            "data": {"source": source, "path": str(path), "media_root": str(media_root), "num_workers": workers,
                     "media": media},
        }
    )  # fmt: skip


def _write_jsonl(path: Path) -> list[int]:
    """GOOD records first, then BAD lines, with a blank line between; returns the BAD line numbers."""
    lines = [json.dumps(r) for r in GOOD] + [""] + [text for text, _, _ in BAD]
    path.write_text("\n".join(lines) + "\n")
    return list(range(len(GOOD) + 2, len(GOOD) + 2 + len(BAD)))


@pytest.mark.parametrize("workers", [0, 2])
def test_jsonl_good_and_bad_records(tmp_path, media_root, workers):
    source = tmp_path / "records.jsonl"
    bad_lines = _write_jsonl(source)
    report = ingest(_config(tmp_path, "jsonl", source, media_root, workers), progress=False)
    assert report.good == {"train": 1, "validation": 1, "test": 1}
    assert report.rejected == {"train": len(BAD) - 1, "validation": 0, "test": 0, "dev": 1}
    rejected = [json.loads(line) for line in Path(report.rejected_path).read_text().splitlines()]
    assert len(rejected) == len(BAD) == report.total_rejected
    for entry, line, (_, field, reason) in zip(rejected, bad_lines, BAD, strict=True):
        assert entry["file"] == str(source) and entry["line"] == line, entry
        assert entry["field"] == field and reason in entry["reason"], entry
    out = tmp_path / "out"
    train, val, test = (load_split(out, split) for split in ("train", "validation", "test"))
    assert [s.id for s in train + val + test] == ["q1", "q2", "q3"]
    assert train[0].choices == ["dog", "car"] and train[0].fact_dict == {"object": "car"}
    assert val[0].answer == "3" and val[0].answer_type == "numeric"
    assert json.loads((out / "ingest.json").read_text())["total_good"] == 3
    assert "Rejected records: 12" in (out / "README.md").read_text()


def test_jsonl_folder_of_splits(tmp_path, media_root):
    folder = tmp_path / "annotations"
    folder.mkdir()
    rows = [{k: v for k, v in r.items() if k != "split"} for r in GOOD]
    (folder / "train.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n")
    (folder / "test.jsonl").write_text(json.dumps(rows[2]) + "\n" + '{"id": "x"}\n')
    report = ingest(_config(tmp_path, "jsonl", folder, media_root), progress=False)
    assert report.good == {"train": 2, "validation": 0, "test": 1} and report.rejected["test"] == 1
    entry = json.loads(Path(report.rejected_path).read_text())
    assert (
        entry["file"] == str(folder / "test.jsonl")
        and entry["line"] == 2
        and entry["field"] == "task, question, answer"
    )
    assert load_split(tmp_path / "out", "validation") == []


def test_hf_dataset_source(tmp_path, media_root):
    rows = [{k: v for k, v in r.items() if k not in ("split", "facts")} for r in GOOD[:1]]
    rows.append({**rows[0], "id": "q9", "answer": "Z"})
    table = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": table}).save_to_disk(str(tmp_path / "hf"))
    report = ingest(_config(tmp_path, "hf_dataset", tmp_path / "hf", media_root), progress=False)
    assert report.good["train"] == 1 and report.rejected["train"] == 1
    entry = json.loads(Path(report.rejected_path).read_text())
    assert entry["file"] == f"{tmp_path / 'hf'}[train]" and entry["line"] == 1 and entry["field"] == "answer"


def test_media_limits_reject_with_reason(media_dir):
    """What ingest's decoding pass reports for a file it does not store."""
    assert not isinstance(decode_for_store(media_dir / "indexed.mp4", MediaConfig()), str)
    assert decode_for_store(media_dir / "wide.mp4", MediaConfig(max_resolution=100)).startswith(
        "resolution 112x84"
    )
    assert "no audio stream" in decode_for_store(
        media_dir / "silent_track_missing.mp4", MediaConfig(allow_missing_audio=False)
    )
    assert decode_for_store(media_dir / "indexed.mp4", MediaConfig(max_duration_s=1.0)).startswith(
        "duration 2.0s"
    )


def test_missing_source_is_an_error(tmp_path, media_root):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest(_config(tmp_path, "jsonl", tmp_path / "nope.jsonl", media_root), progress=False)
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(FileNotFoundError, match="no train.jsonl, validation.jsonl or test.jsonl"):
        ingest(_config(tmp_path, "jsonl", tmp_path / "empty_folder", media_root), progress=False)


def test_synthetic_source(tmp_path):
    cfg = AvatarConfig.model_validate(
        {"paths": {"data_dir": str(tmp_path / "syn")}, "seed": 3, "data": {"num_workers": 0,
         "synthetic": {"n_train": 4, "n_val": 1, "n_test": 2, "tasks": ["av_match", "localise"]}}}
    )  # fmt: skip
    report = ingest(cfg, progress=False)
    assert report.good == {"train": 4, "validation": 1, "test": 2} and report.total_rejected == 0
    assert Path(report.rejected_path).read_text() == ""
    samples = load_split(tmp_path / "syn", "train")
    assert [s.id for s in samples] == [
        f"{t}-train-{i:05d}" for t in ("av_match", "localise") for i in range(2)
    ]
    assert all(isinstance(s, Sample) and (tmp_path / "syn" / s.video).is_file() for s in samples)


def test_load_split_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'; valid splits: train, validation, test"):
        load_split(tmp_path, "dev")
    with pytest.raises(FileNotFoundError, match="no data set here"):
        load_split(tmp_path, "train")
