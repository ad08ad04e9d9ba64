"""Folder-level errors, path escapes, missing media, the failures of real downloads each layout fixes,
helpers and the lm-eval JSONL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmark_layouts import build_layout

from avatar_core.data.benchmarks import BenchmarkError, load_benchmark, write_lm_eval_jsonl
from avatar_core.data.benchmarks.core import (
    MalformedRecordError,
    answer_letter,
    option_dict,
    safe_relative,
    strip_option_letters,
)
from avatar_core.data.benchmarks.embedded import sniff_extension
from avatar_core.data.schema import Sample


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------- folders and files


def test_missing_folder_names_benchmark_path_and_expected_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("dailyomni", missing)
    message = str(caught.value)
    assert message.startswith("dailyomni: ")
    assert str(missing) in message and "does not exist" in message
    assert "qa.json" in message and "Videos/<video_id>/<video_id>_video.mp4" in message


def test_missing_annotation_file_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("videoholmes", tmp_path)
    message = str(caught.value)
    assert message.startswith("videoholmes: no annotation file found under")
    assert str(tmp_path / "Benchmark/test_Video-Holmes.json") in message
    assert str(tmp_path / "test_Video-Holmes.json") in message
    with pytest.raises(
        BenchmarkError, match=r"av_odyssey_part\*\.parquet.*AV_Odyssey_Bench_LMMs_Eval/av_odyssey\.json"
    ):
        load_benchmark("avodyssey", tmp_path)


def test_unknown_benchmark_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="valid names: avcounting, avodyssey, dailyomni"):
        load_benchmark("mmmu", tmp_path)


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_bad_limit_is_refused(tmp_path: Path, limit: object) -> None:
    with pytest.raises(ValueError, match="limit must be None or a non-negative integer"):
        load_benchmark("mmvu", tmp_path, limit=limit)  # type: ignore[arg-type]


def test_broken_files_name_the_file(tmp_path: Path) -> None:
    root = build_layout("intentbench", "root", tmp_path / "ib")
    (root / "qa.json").write_text("[{]")
    with pytest.raises(BenchmarkError, match=r"intentbench: .*qa.json: not valid JSON"):
        load_benchmark("intentbench", root)
    (root / "qa.json").write_text("{}")
    with pytest.raises(
        BenchmarkError, match=r"intentbench: .*qa.json: expected a JSON list of records, got dict"
    ):
        load_benchmark("intentbench", root)
    omni = build_layout("omnibench", "github", tmp_path / "omni")
    with (omni / "dataset" / "batch-5_1142_20240817.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(BenchmarkError, match=r"omnibench: .*20240817.jsonl: line 4 is not valid JSON"):
        load_benchmark("omnibench", omni)
    world = build_layout("worldsense", "creators", tmp_path / "world")
    (world / "worldsense_qa.json").write_text("[]")
    with pytest.raises(
        BenchmarkError, match=r"worldsense: .*: expected an object video_id -> tasks, got list"
    ):
        load_benchmark("worldsense", world)
    odyssey = tmp_path / "odyssey"
    odyssey.mkdir()
    (odyssey / "av_odyssey_part1.parquet").write_bytes(b"PAR1 cut short")
    with pytest.raises(
        BenchmarkError, match=r"avodyssey: .*av_odyssey_part1.parquet: not a readable parquet file"
    ):
        load_benchmark("avodyssey", odyssey)


# --------------------------------------------------------------------------- media paths


@pytest.mark.parametrize("escape", ["../outside.mp4", "social/../../outside.mp4", "/etc/passwd", "C:\\x.mp4"])
def test_media_path_escaping_the_root_raises_even_when_not_strict(tmp_path: Path, escape: str) -> None:
    root = build_layout("intentbench", "root", tmp_path / "ib")
    (tmp_path / "outside.mp4").write_bytes(b"")
    _edit_json(root / "qa.json", lambda rows: rows[0].update(video=escape))
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("intentbench", root)
    message = str(caught.value)
    assert message.startswith(f"intentbench: {root / 'qa.json'}: record 0 (qid=201): field 'video': ")
    assert "inside the benchmark root" in message


def test_escape_through_a_basename_field_is_caught(tmp_path: Path) -> None:
    root = build_layout("omnibench", "github", tmp_path / "omni")
    path = root / "dataset" / "batch-5_1142_20240817.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["audio_path"] = "../../../secret.wav"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(
        BenchmarkError, match=r"field 'audio_path': media path 'mm_data/audio/\.\./\.\./\.\./secret"
    ):
        load_benchmark("omnibench", root)


def test_missing_media_is_reported_per_record_not_fatal_even_when_strict(tmp_path: Path) -> None:
    root = build_layout("worldsense", "creators", tmp_path / "world")
    (root / "videos" / "vidB.mp4").unlink()
    result = load_benchmark("worldsense", root)
    assert [s.id for s in result.samples] == ["worldsense/vidA_task1"]
    assert result.rejected[-1] == {
        "file": str(root / "worldsense_qa.json"),
        "record": "vidB/task1",
        "reason": "missing media file(s): video_id -> videos/vidB.mp4 or vidB.mp4",
    }
    _edit_json(root / "worldsense_qa.json", lambda data: data["vidA"].pop("task2"))
    strict = load_benchmark("worldsense", root, strict=True)
    assert [s.id for s in strict.samples] == ["worldsense/vidA_task1"]
    assert [entry["record"] for entry in strict.rejected] == ["vidB/task1"]


def test_clips_found_in_the_fallback_folders(tmp_path: Path) -> None:
    world = build_layout("worldsense", "creators", tmp_path / "world")
    (world / "videos" / "vidA.mp4").rename(world / "vidA.mp4")
    assert [s.video for s in load_benchmark("worldsense", world).samples] == ["vidA.mp4", "videos/vidB.mp4"]
    counting = build_layout("avcounting", "creators", tmp_path / "count")
    (counting / "cg_videos_720p").rename(counting / "videos")
    assert [s.video for s in load_benchmark("avcounting", counting).samples] == [
        "videos/vid01.mp4",
        "videos/vid02.mp4",
        "videos/vid02.mp4",
    ]


def test_duplicate_question_ids_are_rejected(tmp_path: Path) -> None:
    root = build_layout("mmvu", "creators", tmp_path / "mmvu")
    _edit_json(root / "validation.json", lambda rows: rows.append(rows[1]))
    result = load_benchmark("mmvu", root)
    assert result.rejected[-1]["record"] == "4 (id='validation_1')"
    assert result.rejected[-1]["reason"] == "field 'id': duplicate question id 'validation_1'"


# --------------------------------------------------------------------------- failures of real downloads


def test_video_holmes_clips_in_benchmark_videos_cropped(tmp_path: Path) -> None:
    root = build_layout("videoholmes", "creators", tmp_path / "vh")
    (root / "Benchmark" / "videos").rename(root / "Benchmark" / "videos_cropped")
    result = load_benchmark("videoholmes", root)
    assert [s.video for s in result.samples] == [
        "Benchmark/videos_cropped/1SEfdoqjzDc.mp4",
        "Benchmark/videos_cropped/8bK2pZ0xL3w.mp4",
        "Benchmark/videos_cropped/8bK2pZ0xL3w.mp4",
    ]
    (root / "Benchmark" / "videos_cropped" / "1SEfdoqjzDc.mp4").unlink()
    missing = load_benchmark("videoholmes", root).rejected[0]["reason"]
    assert missing == (
        "missing media file(s): video ID -> Benchmark/videos/1SEfdoqjzDc.mp4 or "
        "Benchmark/videos_cropped/1SEfdoqjzDc.mp4 or Benchmark/video/1SEfdoqjzDc.mp4"
    )


def test_video_holmes_vlmevalkit_flat_video_folder_and_bad_ids(tmp_path: Path) -> None:
    root = build_layout("videoholmes", "snapshot", tmp_path / "vh")
    (root / "videos_cropped").rename(root / "video")
    assert len(load_benchmark("videoholmes", root).samples) == 3
    _edit_json(
        root / "test_Video-Holmes.json",
        lambda rows: (rows[0].update({"Question ID": True}), rows[2].update({"Question ID": 1.5})),
    )
    rejected = load_benchmark("videoholmes", root).rejected
    assert [r["reason"] for r in rejected if "Question ID" in r["reason"]] == [
        "field 'Question ID': expected an integer or string question id, got True",
        "field 'Question ID': expected an integer or string question id, got 1.5",
    ]


def test_intentbench_solution_wins_path_field_and_root_fallback(tmp_path: Path) -> None:
    root = build_layout("intentbench", "creators", tmp_path / "ib")

    def edit(rows: list[dict]) -> None:
        rows[0]["answer"] = "A"  # the AVATAR authors' field disagrees: the creators' solution wins
        rows[1]["path"] = rows[1].pop("video")  # the creators' loader falls back to `path`
        rows[2]["solution"] = "Yes"  # a solution without tags
        rows[4]["video"] = "extra/emer_0005.mp4"  # a clip outside videos/

    _edit_json(root / "qa.json", edit)
    (root / "extra").mkdir()
    shutil.copyfile(root / "videos/social/social_0001.mp4", root / "extra/emer_0005.mp4")
    samples = load_benchmark("intentbench", root).samples
    assert [s.answer for s in samples] == ["C", "B,E", "A", "A,C"]
    assert samples[1].video == "videos/emer/emer_0002.mp4"
    assert samples[3].video == "extra/emer_0005.mp4"
    _edit_json(root / "qa.json", lambda rows: rows[1].update(solution="<answer>B,B</answer>"))
    reason = load_benchmark("intentbench", root).rejected[0]["reason"]
    assert reason == "field 'solution': answer 'B,B' is not a comma-separated set of option letters in ABCDEF"


def test_avodyssey_export_at_the_root_and_as_parquet(tmp_path: Path) -> None:
    root = build_layout("avodyssey", "lmms_eval", tmp_path / "avo")
    inner = root / "AV_Odyssey_Bench_LMMs_Eval"
    for child in inner.iterdir():
        child.rename(root / child.name)
    inner.rmdir()
    samples = load_benchmark("avodyssey", root).samples
    assert samples[0].video == "Timbre/Timbre/instrument/11_1.jpg"
    rows = json.loads((root / "av_odyssey.json").read_text())
    (root / "av_odyssey.json").unlink()
    pq.write_table(pa.Table.from_pylist(rows), root / "av_odyssey.parquet")
    assert load_benchmark("avodyssey", root).samples == samples
    creators = build_layout("avodyssey", "creators", root)  # both present: the creators' release wins
    assert load_benchmark("avodyssey", creators).layout.startswith("creators' Hugging Face release")


# --------------------------------------------------------------------------- helpers and lm-eval


def test_option_answer_and_extension_helpers() -> None:
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
    assert [
        sniff_extension(b) for b in (b"\xff\xd8\xff\xe0", b"ID3\x04", b"\x00\x00\x00\x18ftypmp42", b"??")
    ] == [
        ".jpg",
        ".mp3",
        ".mp4",
        ".bin",
    ]


def test_lm_eval_jsonl_rows(tmp_path: Path) -> None:
    samples = load_benchmark("omnibench", build_layout("omnibench", "github", tmp_path / "omni")).samples
    samples += load_benchmark(
        "avcounting", build_layout("avcounting", "creators", tmp_path / "cnt"), limit=1
    ).samples
    samples += load_benchmark("intentbench", build_layout("intentbench", "root", tmp_path / "ib")).samples[
        1:2
    ]
    out = tmp_path / "eval" / "bench.jsonl"
    assert write_lm_eval_jsonl(samples, out, media_root="/data/omni") == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["answer"] == 1 and rows[0]["answer_letter"] == "B"
    assert rows[0]["choices"][rows[0]["answer"]] == "A dog barking"
    assert rows[0]["video"] == "/data/omni/mm_data/image/0.jpg"
    assert rows[0]["extra_media"] == ["/data/omni/mm_data/audio/0.mp3"]
    assert rows[0]["prompt"].endswith("D. Music\nAnswer with the option letter.")
    assert (rows[2]["answer"], rows[2]["answer_type"], rows[2]["choices"]) == ("4", "numeric", [])
    assert (rows[3]["answer"], rows[3]["answer_type"]) == ("B,E", "multi")
    assert rows[3]["prompt"].endswith(
        "Answer with every correct option letter, separated by commas (e.g. A,C)."
    )
    with pytest.raises(ValueError, match="bench.jsonl: sample 'x'"):
        write_lm_eval_jsonl([Sample(id="x", task="t", question="q", answer="E", choices=["a", "b"])], out)
