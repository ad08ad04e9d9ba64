"""Each adapter on each released layout it reads: the layout it detects, the records it reads,
rejects and skips, the exact Samples of representative records, strict mode and limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_layouts import build_all, layouts

from avatar_core.data.benchmarks import BENCHMARKS, BenchmarkError, load_benchmark
from avatar_core.data.schema import Sample

# (benchmark, layout) -> (detected layout key, accepted ids, {rejected record label: words in the reason}, skipped labels)
EXPECTED: dict[tuple[str, str], tuple[str, list[str], dict[str, tuple[str, ...]], list[str]]] = {
    ("avcounting", "creators"): (
        "creators",
        ["1", "3", "4"],
        {"1 (index=2)": ("'answer'", "'many'"), "4 (index=5)": ("missing media", "cg_videos_720p/vid03.mp4")},
        [],
    ),
    ("avodyssey", "creators"): ("creators", ["1", "3"], {"1 (question_id='2')": ("'answer'", "'Z'")}, []),
    ("avodyssey", "lmms_eval"): (
        "lmms_eval",
        ["11", "12"],
        {"2 (question_id='13')": ("'video_path'", "at least one video path")},
        [],
    ),
    ("dailyomni", "creators"): (
        "creators",
        ["abc123/0", "xyz789/2"],
        {"1 (video_id='abc123')": ("'Answer'", "'E'", "ABCD")},
        [],
    ),
    ("intentbench", "creators"): (
        "creators",
        ["#0", "#1", "#2"],
        {"3": ("'solution'", "'G'"), "4": ("missing media", "videos/emer/emer_0005.mp4")},
        [],
    ),
    ("intentbench", "root"): (
        "root",
        ["201", "202", "203"],
        {"3 (qid=204)": ("'problem_type'", "'free-form'")},
        [],
    ),
    ("mmvu", "creators"): (
        "creators",
        ["validation_1", "validation_3"],
        {"2 (id='validation_2')": ("'answer'", "'F'", "ABCDE")},
        ["0 (id='validation_0')"],
    ),
    ("omnibench", "github"): ("github", ["0", "2"], {"1 (index=1)": ("'answer'", "'Sadness'")}, []),
    ("omnibench", "parquet"): ("parquet", ["10", "12"], {"1 (index=11)": ("'options'", "got 1")}, []),
    ("videoholmes", "creators"): (
        "creators",
        ["1SEfdoqjzDc/1", "8bK2pZ0xL3w/1", "8bK2pZ0xL3w/2"],
        {"1 (video ID='1SEfdoqjzDc', Question ID=2)": ("'Question'", "missing")},
        [],
    ),
    ("videoholmes", "snapshot"): (
        "snapshot",
        ["1SEfdoqjzDc/1", "8bK2pZ0xL3w/1", "8bK2pZ0xL3w/2"],
        {"1 (video ID='1SEfdoqjzDc', Question ID=2)": ("'Question'", "missing")},
        [],
    ),
    ("worldsense", "creators"): (
        "creators",
        ["vidA_task1", "vidB_task1"],
        {"vidA/task2": ("'candidates'", "got 1")},
        [],
    ),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[tuple[str, str], Path]:
    return build_all(tmp_path_factory.mktemp("benchmarks"))


def test_every_benchmark_has_fixtures_sources_and_layouts() -> None:
    assert set(BENCHMARKS.names()) == set(layouts())
    assert set(EXPECTED) == {(b, layout) for b, names in layouts().items() for layout in names}
    for name in BENCHMARKS.names():
        adapter = BENCHMARKS.get(name)
        assert adapter.follows and all(":" in source for source in adapter.follows), name
        assert adapter.layouts and all(layout.description for layout in adapter.layouts), name


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: "-".join(k))
def test_layout_is_detected_and_records_are_read_or_reported(built, key) -> None:
    bench, _ = key
    layout_key, ids, rejected, skipped = EXPECTED[key]
    result = load_benchmark(bench, built[key])
    adapter = BENCHMARKS.get(bench)
    assert result.layout == next(x.description for x in adapter.layouts if x.key == layout_key)
    assert [s.id for s in result.samples] == [f"{bench}/{i}" for i in ids]
    assert {r["record"] for r in result.rejected} == set(rejected)
    for entry in result.rejected:
        assert entry["file"] in result.files
        for word in rejected[entry["record"]]:
            assert word in entry["reason"], (entry, word)
    assert [s["record"] for s in result.skipped] == skipped
    for sample in result.samples:
        sample.validate(bench)
        assert sample.source == bench
        for rel in [sample.video, *sample.extra_media]:
            assert (built[key] / rel).is_file() and (built[key] / rel).stat().st_size > 0


def test_video_holmes_integer_ids_numbered_per_video(built) -> None:
    samples = load_benchmark("videoholmes", built["videoholmes", "creators"]).samples
    assert samples[0] == Sample(
        id="videoholmes/1SEfdoqjzDc/1",  # "Question ID" 1 is an integer, repeated for the next video
        task="SR",
        question="Why does the man hide the letter?",
        answer="D",
        choices=["Fear", "Guilt", "Love", "Greed", "Duty", "Revenge"],
        video="Benchmark/videos/1SEfdoqjzDc.mp4",
        source="videoholmes",
    )
    assert samples[1].id == "videoholmes/8bK2pZ0xL3w/1"


def test_intentbench_creators_release(built) -> None:
    root = built["intentbench", "creators"]
    mc, multi, judge = load_benchmark("intentbench", root).samples
    assert (mc.answer_type, mc.answer, mc.choices[2]) == ("mc", "C", "Apologise")
    assert mc.video == "videos/social/social_0001.mp4"  # videos/ + the record's video field
    assert (multi.answer_type, multi.answer, multi.task) == ("multi", "B,E", "emer_ov_mc")
    assert multi.choices == ["Questioning", "Helpless", "Curiosity", "Sentimentality", "Angry", "Friendly"]
    assert (judge.choices, judge.answer, judge.task) == (["Yes", "No"], "A", "judge")


def test_intentbench_avatar_authors_layout_reads_answer_and_root_paths(built) -> None:
    mc, multi, judge = load_benchmark("intentbench", built["intentbench", "root"]).samples
    assert mc.video == "social/social_0201.mp4"
    assert multi.answer == "B,E"  # released as "E,b": letters sorted and upper-cased
    assert judge.answer == "B"  # "No"


def test_avodyssey_lmms_eval_export_finds_media_as_given_and_one_folder_deeper(built) -> None:
    image_q, video_q = load_benchmark("avodyssey", built["avodyssey", "lmms_eval"]).samples
    base = "AV_Odyssey_Bench_LMMs_Eval"
    assert image_q.video == f"{base}/Timbre/Timbre/instrument/11_1.jpg"
    assert image_q.extra_media == [
        f"{base}/Timbre/Timbre/instrument/11_2.jpg",
        f"{base}/Timbre/Timbre/instrument/11_a.wav",
    ]
    assert (video_q.video, video_q.extra_media) == (
        f"{base}/Hallucination/dog/12.mp4",
        [f"{base}/Hallucination/dog/12.wav"],
    )
    assert (image_q.task, image_q.choices[:2], image_q.answer) == ("Timbre", ["[img1]", "[img2]"], "A")


def test_embedded_media_are_written_once_as_files(built) -> None:
    root = built["avodyssey", "creators"]
    first = load_benchmark("avodyssey", root).samples[0]
    assert (first.video, first.extra_media) == (
        "_extracted/1/image_1.jpg",
        ["_extracted/1/image_2.png", "_extracted/1/audio_1.wav"],
    )
    assert (root / first.video).read_bytes()[:3] == b"\xff\xd8\xff"
    stamp = (root / first.video).stat().st_mtime_ns
    assert load_benchmark("avodyssey", root).samples[0] == first
    assert (root / first.video).stat().st_mtime_ns == stamp  # not rewritten
    omni = load_benchmark("omnibench", built["omnibench", "parquet"]).samples
    assert [(s.video, s.extra_media) for s in omni] == [
        ("_extracted/10/image.jpg", ["_extracted/10/audio.wav"]),
        ("_extracted/12/image.png", ["_extracted/12/audio.mp3"]),
    ]


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: "-".join(k))
def test_strict_mode_raises_on_the_first_malformed_record(built, key) -> None:
    bench, _ = key
    malformed = [label for label, words in EXPECTED[key][2].items() if "missing media" not in words]
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(bench, built[key], strict=True)
    assert str(caught.value).startswith(f"{bench}: ")
    assert f": record {malformed[0]}: " in str(caught.value)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: "-".join(k))
def test_limit_returns_the_first_samples_in_file_order(built, key) -> None:
    bench, _ = key
    full = load_benchmark(bench, built[key]).samples
    assert load_benchmark(bench, built[key], limit=1).samples == full[:1]
    assert load_benchmark(bench, built[key], limit=0).samples == []
    assert load_benchmark(bench, built[key], limit=10).samples == full
