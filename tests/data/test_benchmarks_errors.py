"""Folder-level errors, path escapes, missing media, embedded AV-Odyssey media, helpers, lm-eval JSONL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avatar_core.data.benchmarks import BenchmarkError, load_benchmark, write_lm_eval_jsonl
from avatar_core.data.benchmarks.core import (
    MalformedRecordError,
    answer_letter,
    option_dict,
    safe_relative,
    strip_option_letters,
)
from avatar_core.data.schema import Sample

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_missing_folder_names_benchmark_path_and_expected_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("dailyomni", missing)
    message = str(caught.value)
    assert message.startswith("dailyomni: ")
    assert str(missing) in message and "does not exist" in message
    assert "qa.json" in message and "Videos/<video_id>/<video_id>_video.mp4" in message


def test_missing_annotation_file_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("videoholmes", tmp_path)
    message = str(caught.value)
    assert message.startswith("videoholmes: no annotation file found under")
    assert str(tmp_path / "test_Video-Holmes.json") in message
    assert str(tmp_path / "Benchmark/test_Video-Holmes.json") in message


def test_unknown_benchmark_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="valid names: avcounting, avodyssey, dailyomni"):
        load_benchmark("mmmu", FIXTURES / "mmvu")


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_bad_limit_is_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="limit must be None or a non-negative integer"):
        load_benchmark("mmvu", FIXTURES / "mmvu", limit=limit)  # type: ignore[arg-type]


def test_broken_json_names_the_file(tmp_path: Path) -> None:
    root = copy_fixture("intentbench", tmp_path)
    (root / "qa.json").write_text("[{]")
    with pytest.raises(BenchmarkError, match=r"intentbench: .*qa.json: not valid JSON"):
        load_benchmark("intentbench", root)
    (root / "qa.json").write_text("{}")
    with pytest.raises(
        BenchmarkError, match=r"intentbench: .*qa.json: expected a JSON list of records, got dict"
    ):
        load_benchmark("intentbench", root)
    omni = copy_fixture("omnibench", tmp_path)
    with (omni / "dataset" / "batch-5_1142_20240817.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(BenchmarkError, match=r"omnibench: .*20240817.jsonl: line 4 is not valid JSON"):
        load_benchmark("omnibench", omni)
    world = copy_fixture("worldsense", tmp_path)
    (world / "worldsense_qa.json").write_text("[]")
    with pytest.raises(
        BenchmarkError, match=r"worldsense: .*: expected an object video_id -> tasks, got list"
    ):
        load_benchmark("worldsense", world)


@pytest.mark.parametrize("escape", ["../outside.mp4", "videos/../../outside.mp4", "/etc/passwd", "C:\\x.mp4"])
def test_media_path_escaping_the_root_raises_even_when_not_strict(tmp_path: Path, escape: str) -> None:
    root = copy_fixture("intentbench", tmp_path)
    (tmp_path / "outside.mp4").write_bytes(b"")
    records = json.loads((root / "qa.json").read_text())
    records[0]["video"] = escape
    (root / "qa.json").write_text(json.dumps(records))
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("intentbench", root)
    message = str(caught.value)
    assert message.startswith(f"intentbench: {root / 'qa.json'}: record 0 (qid=101): field 'video': ")
    assert repr(escape) in message and "inside the benchmark root" in message


def test_escape_through_a_basename_field_is_caught(tmp_path: Path) -> None:
    root = copy_fixture("omnibench", tmp_path)
    path = root / "dataset" / "batch-5_1142_20240817.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["audio_path"] = "../../../secret.wav"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(
        BenchmarkError, match=r"field 'audio_path': media path 'mm_data/audio/\.\./\.\./\.\./secret"
    ):
        load_benchmark("omnibench", root)


def test_missing_media_is_reported_per_record_not_fatal(tmp_path: Path) -> None:
    root = copy_fixture("worldsense", tmp_path)
    (root / "vidB.mp4").unlink()
    result = load_benchmark("worldsense", root)
    assert [s.id for s in result.samples] == ["worldsense/vidA_task1"]
    assert result.rejected[-1] == {
        "file": str(root / "worldsense_qa.json"),
        "record": "vidB/task1",
        "reason": "missing media file(s): video_id -> vidB.mp4",
    }
    # strict mode raises for malformed annotation only; with it fixed, missing media stays a report
    data = json.loads((root / "worldsense_qa.json").read_text())
    del data["vidA"]["task2"]
    (root / "worldsense_qa.json").write_text(json.dumps(data))
    strict = load_benchmark("worldsense", root, strict=True)
    assert [s.id for s in strict.samples] == ["worldsense/vidA_task1"]
    assert [entry["record"] for entry in strict.rejected] == ["vidB/task1"]


def test_worldsense_uses_videos_subfolder_when_present(tmp_path: Path) -> None:
    root = copy_fixture("worldsense", tmp_path)
    (root / "videos").mkdir()
    for name in ("vidA.mp4", "vidB.mp4"):
        (root / name).rename(root / "videos" / name)
    assert [s.video for s in load_benchmark("worldsense", root).samples] == [
        "videos/vidA.mp4",
        "videos/vidB.mp4",
    ]


def test_duplicate_question_ids_are_rejected(tmp_path: Path) -> None:
    root = copy_fixture("mmvu", tmp_path)
    records = json.loads((root / "validation.json").read_text())
    records.append(records[1])
    (root / "validation.json").write_text(json.dumps(records))
    result = load_benchmark("mmvu", root)
    assert result.rejected[-1]["record"] == "4 (id='validation_1')"
    assert result.rejected[-1]["reason"] == "field 'id': duplicate question id 'validation_1'"


def test_avodyssey_embedded_bytes_are_written_once_with_sniffed_extensions(tmp_path: Path) -> None:
    jpeg, wav = b"\xff\xd8\xff\xe0fakejpeg", b"RIFF\x00\x00\x00\x00WAVEfmt "
    row = {"question_id": "q/7", "question_type_id": 3, "data_type": "image", "subfield": "Pitch"}
    row |= {"question": "Which picture?", "options": ["A. a", "B. b", "C. c", "D. d"], "answer": "(c)"}
    row |= {"image_1": {"bytes": jpeg, "path": None}, "audio_1": wav, "video_1": None}
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "av_odyssey_part1.parquet")
    sample = load_benchmark("avodyssey", tmp_path).samples[0]
    assert (sample.video, sample.extra_media) == (
        "_extracted/q_7/image_1.jpg",
        ["_extracted/q_7/audio_1.wav"],
    )
    assert (sample.choices, sample.answer) == (["a", "b", "c", "d"], "C")
    assert (tmp_path / sample.video).read_bytes() == jpeg
    assert (tmp_path / sample.extra_media[0]).read_bytes() == wav


def test_option_and_answer_helpers() -> None:
    assert strip_option_letters(["(A) x", "(B) y"]) == ["x", "y"]
    assert strip_option_letters(["B. x", "A. y"]) == ["B. x", "A. y"]  # letters out of order: kept verbatim
    assert answer_letter("b. dog", ["cat", "dog"]) == "B"
    assert answer_letter("Dog", ["cat", "dog"]) == "B"  # the option text, case-insensitive
    with pytest.raises(MalformedRecordError, match="answer 'C'"):
        answer_letter("C", ["cat", "dog"])
    assert answer_letter("dog", ["dog", "Dog", "cat"]) == "A"  # an exact match wins over case folding
    with pytest.raises(MalformedRecordError, match="neither"):
        answer_letter("DOG", ["dog", "Dog"])  # ambiguous once case is folded
    with pytest.raises(MalformedRecordError, match="without gaps"):
        option_dict({"Options": {"A": "x", "C": "y"}}, "Options")
    assert safe_relative("b", "f", "video", "./a//b/../c.mp4") == "a/c.mp4"


def test_lm_eval_jsonl_rows(tmp_path: Path) -> None:
    samples = load_benchmark("omnibench", FIXTURES / "omnibench").samples
    samples += load_benchmark("avcounting", FIXTURES / "avcounting", limit=1).samples
    out = tmp_path / "eval" / "bench.jsonl"
    assert write_lm_eval_jsonl(samples, out, media_root="/data/omni") == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["answer"] == 1 and rows[0]["answer_letter"] == "B"
    assert rows[0]["choices"][rows[0]["answer"]] == "A dog barking"
    assert rows[0]["video"] == "/data/omni/mm_data/image/0.jpg"
    assert rows[0]["extra_media"] == ["/data/omni/mm_data/audio/0.mp3"]
    assert rows[0]["prompt"].endswith("D. Music\nAnswer with the option letter.")
    assert (rows[2]["answer"], rows[2]["answer_type"], rows[2]["choices"]) == ("4", "numeric", [])
    with pytest.raises(ValueError, match="bench.jsonl: sample 'x'"):
        write_lm_eval_jsonl([Sample(id="x", task="t", question="q", answer="E", choices=["a", "b"])], out)
