"""Each adapter on its fixture: the exact Samples, the malformed record reported, strict mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_core.data.benchmarks import BENCHMARKS, BenchmarkError, load_benchmark
from avatar_core.data.schema import Sample

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def mc(
    bench: str, native_id: str, task: str, question: str, choices: list[str], answer: str, *media: str
) -> Sample:
    return Sample(
        id=f"{bench}/{native_id}",
        task=task,
        question=question,
        answer=answer,
        choices=choices,
        video=media[0],
        extra_media=list(media[1:]),
        source=bench,
    )


EXPECTED: dict[str, list[Sample]] = {
    "omnibench": [
        mc(
            "omnibench",
            "0",
            "Causal Inference",
            "Why is the man covering his ears?",
            ["A car horn", "A dog barking", "Rain", "Music"],
            "B",  # released as the option text "A dog barking"
            "mm_data/image/0.jpg",
            "mm_data/audio/0.mp3",
        ),
        mc(
            "omnibench",
            "2",
            "Object Identification & Description",
            "Which object is the speaker talking about?",
            ["The lamp", "The chair", "The clock", "The door"],
            "C",
            "mm_data/image/2.jpg",
            "mm_data/audio/2.wav",
        ),
    ],
    "dailyomni": [
        mc(
            "dailyomni",
            "abc123/0",
            "AV Event Alignment",
            "Which sound accompanies the jump?",
            ["A whistle", "A cheer", "A splash", "Silence"],  # "A. " prefixes stripped
            "C",
            "Videos/abc123/abc123_video.mp4",
        ),
        mc(
            "dailyomni",
            "xyz789/2",
            "Reasoning",
            "Why does the speaker pause?",
            ["To let the audience laugh", "To drink water", "To read notes", "To change slides"],
            "A",
            "Videos/xyz789/xyz789_video.mp4",
        ),
    ],
    "avcounting": [
        Sample(
            id="avcounting/1",
            task="event",
            question="How many times does the dog bark?",  # question_en wins over the Chinese question
            answer="4",
            answer_type="numeric",
            video="cg_videos_720p/vid01.mp4",
            source="avcounting",
        ),
        Sample(
            id="avcounting/3",
            task="attribute",
            question="How many red cars pass by?",
            answer="2",  # released as 2.0
            answer_type="numeric",
            video="cg_videos_720p/vid02.mp4",
            source="avcounting",
        ),
    ],
    "worldsense": [
        mc(
            "worldsense",
            "vidA_task1",
            "Audio Recognition",
            "What does the commentator shout?",
            ["Goal", "Offside", "Foul", "Penalty"],
            "A",
            "vidA.mp4",
        ),
        mc(
            "worldsense",
            "vidB_task1",
            "Emotion Recognition",
            "How does the singer feel?",
            ["Angry", "Bored", "Scared", "Happy"],
            "D",
            "vidB.mp4",
        ),
    ],
    "mmvu": [
        mc(
            "mmvu",
            "validation_1",
            "Chemistry",
            "How many grams of precipitate form?",
            ["10.0", "5.0", "12.0", "15.0", "20.0"],
            "A",
            "videos/Chemistry/0.mp4",
        ),
        mc(
            "mmvu",
            "validation_3",
            "Thermodynamics",
            "Which process is shown in the animation?",
            [
                "Isothermal compression",
                "Adiabatic compression",
                "Isobaric compression",
                "Adiabatic expansion",
            ],
            "B",  # the empty option E is dropped
            "videos/Thermodynamics/0.mp4",
        ),
    ],
    "videoholmes": [
        mc(
            "videoholmes",
            "film1_SR_1",
            "SR",
            "Why does the man hide the letter?",
            ["Fear", "Guilt", "Love", "Greed", "Duty", "Revenge"],
            "D",
            "videos/film1.mp4",
        ),
        mc(
            "videoholmes",
            "film2_TCI_1",
            "TCI",
            "What caused the blackout?",
            ["A storm", "Sabotage", "An accident", "A fuse"],
            "A",
            "videos/film2.mp4",
        ),
    ],
    "avodyssey": [
        mc(
            "avodyssey",
            "1",
            "Instrument Recognition",
            "Which image shows the instrument you hear? <image> <audio>",
            ["[img1]", "[img2]", "[img3]", "[img4]"],
            "B",
            "media/1_image_1.jpg",
            "media/1_image_2.jpg",
            "media/1_audio_1.wav",
        ),
        mc(
            "avodyssey",
            "3",
            "Sound Source Location",
            "Where is the sound coming from?",
            ["left", "right", "front", "behind"],
            "D",
            "media/3_video_1.mp4",
            "media/3_audio_1.wav",
            "media/3_audio_2.wav",
        ),
    ],
    "intentbench": [
        mc(
            "intentbench",
            "101",
            "multiple choice",
            "What does the woman intend to do next?",
            ["Leave the room", "Call a friend", "Apologise", "Keep arguing"],
            "C",
            "videos/social/101.mp4",
        ),
        mc(
            "intentbench",
            "102",
            "judge",
            'The man was asked "Did you take the money?". Is he lying?',
            ["Yes", "No"],
            "A",  # released as "yes"
            "videos/deception/102.mp4",
        ),
    ],
}

# (annotation file relative to the fixture, record label, words the reason must contain)
MALFORMED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "omnibench": ("dataset/batch-5_1142_20240817.jsonl", "1 (index=1)", ("'answer'", "'Sadness'")),
    "dailyomni": ("qa.json", "1 (video_id='abc123')", ("'Answer'", "'E'", "ABCD")),
    "avcounting": ("cg-av-counting.json", "1 (index=2)", ("'answer'", "'many'")),
    "worldsense": ("worldsense_qa.json", "vidA/task2", ("'candidates'", "got 1")),
    "mmvu": ("validation.json", "2 (id='validation_2')", ("'answer'", "'F'", "ABCDE")),
    "videoholmes": ("test_Video-Holmes.json", "1 (Question ID='film1_TA_2')", ("'Question'", "missing")),
    "avodyssey": ("av_odyssey_part1.parquet", "1 (question_id='2')", ("'answer'", "'Z'")),
    "intentbench": ("qa.json", "3 (qid=104)", ("'options'", "None")),
}


def test_every_registered_benchmark_has_a_fixture_and_loads_it() -> None:
    assert set(BENCHMARKS.names()) == set(EXPECTED) == set(MALFORMED)
    for name in BENCHMARKS.names():
        result = load_benchmark(name, FIXTURES / name)
        assert len(result.samples) == 2, name
        assert all(s.source == name and s.id.startswith(f"{name}/") for s in result.samples)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adapter_produces_the_exact_samples(name: str) -> None:
    result = load_benchmark(name, FIXTURES / name)
    assert result.samples == EXPECTED[name]
    for sample in result.samples:
        sample.validate(name)  # the schema accepts every produced record
        for rel in [sample.video, *sample.extra_media]:
            assert (FIXTURES / name / rel).is_file()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_record_is_reported_with_file_record_and_reason(name: str) -> None:
    file, record, words = MALFORMED[name]
    result = load_benchmark(name, FIXTURES / name)
    assert len(result.rejected) == 1
    rejected = result.rejected[0]
    assert rejected["file"] == str(FIXTURES / name / file)
    assert rejected["record"] == record
    for word in words:
        assert word in rejected["reason"]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_strict_mode_raises_on_the_malformed_record(name: str) -> None:
    file, record, words = MALFORMED[name]
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(name, FIXTURES / name, strict=True)
    message = str(caught.value)
    assert message.startswith(f"{name}: {FIXTURES / name / file}: record {record}: ")
    for word in words:
        assert word in message


def test_out_of_scope_records_are_skipped_and_reported_even_in_strict_mode() -> None:
    mmvu = load_benchmark("mmvu", FIXTURES / "mmvu", limit=1, strict=True)  # stops before the malformed one
    assert [s.id for s in mmvu.samples] == ["mmvu/validation_1"]
    assert mmvu.skipped == [
        {
            "file": str(FIXTURES / "mmvu" / "validation.json"),
            "record": "0 (id='validation_0')",
            "reason": "question_type 'open-ended' has no options; only multiple-choice is converted",
        }
    ]
    intent = load_benchmark("intentbench", FIXTURES / "intentbench")
    assert [entry["record"] for entry in intent.skipped] == ["2 (qid=103)"]
    assert "emer_ov_mc" in intent.skipped[0]["reason"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_limit_returns_the_first_samples_in_file_order(name: str) -> None:
    assert load_benchmark(name, FIXTURES / name, limit=1).samples == EXPECTED[name][:1]
    assert load_benchmark(name, FIXTURES / name, limit=0).samples == []
    assert load_benchmark(name, FIXTURES / name, limit=10).samples == EXPECTED[name]
