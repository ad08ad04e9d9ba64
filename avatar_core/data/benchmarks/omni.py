"""Adapters for the omni-modal benchmarks: OmniBench, Daily-Omni, WorldSense, IntentBench.

Formats were read from each benchmark's released README and evaluation scripts (OmniBench README,
Daily-Omni `test_model/*/testmodel.py` and example QA files, the AVATAR authors' WorldSense and
IntentBench evaluation scripts). Where the released files could not be inspected directly, the
adapter says so below and reads the field names those scripts use.

- omnibench: `dataset/batch-5_1142_20240817.jsonl` (any `dataset/*.jsonl`), keys `index`,
  `task type`, `audio type`, `question`, `options` (texts), `answer` (the option *text*),
  `image_path` / `audio_path` (basenames under `mm_data/image/` and `mm_data/audio/`). The image is
  the primary visual (`Sample.video`), the audio file goes to `Sample.extra_media`. Confirmed from the
  README; the Hugging Face parquet export (bytes inside the file) is not read.
- dailyomni: `qa.json` (list), keys `Question`, `Choice` ("A. ..." strings), `Answer` (letter),
  `video_id`, `Type`; video at `Videos/<video_id>/<video_id>_video.mp4`. Confirmed from the
  authors' evaluation scripts. Records carry no question id; the id is `<video_id>/<position>`.
- worldsense: `worldsense_qa.json`, an object video_id -> {`domain`, ..., `task1`: {`question`,
  `candidates`, `answer`, `task_type`, `task_domain`}, `task2`: ...}; video at `<video_id>.mp4`
  (or `videos/<video_id>.mp4`). Layout taken from the AVATAR authors' WorldSense script; the file
  itself could not be inspected, so the `videos/` fallback is a guess.
- intentbench: `qa.json` (list), keys `qid` (or `Question id`), `problem_type`, `problem`,
  `options`, `answer`, `video` (root-relative). `multiple choice` records map directly; `judge`
  records (deception, answer Yes/No) become two-option questions Yes/No; `emer_ov_mc` records have
  several correct letters, which a single-letter Sample cannot hold, so they are skipped (reported).
  Field names from the AVATAR authors' IntentBench script; no released file was inspected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    BenchmarkError,
    Draft,
    MalformedRecordError,
    UnsupportedRecordError,
    answer_letter,
    first_existing_dir,
    join_media,
    option_list,
    require_dict,
    require_text,
)


class OmniBenchAdapter(BenchmarkAdapter):
    name = "omnibench"
    expects = "dataset/batch-5_1142_20240817.jsonl with media in mm_data/image/ and mm_data/audio/"
    annotation_globs = (("dataset/*.jsonl",), ("*.jsonl",))
    id_fields = ("index",)

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        index = raw.get("index")
        if isinstance(index, bool) or not isinstance(index, (int, str)) or str(index).strip() == "":
            raise MalformedRecordError("index", f"expected an integer question id, got {index!r}")
        choices = option_list(raw, "options")
        return Draft(
            native_id=str(index).strip(),
            task=require_text(raw, "task type"),
            question=require_text(raw, "question"),
            answer=answer_letter(raw.get("answer"), choices),
            choices=choices,
            media=[
                ("image_path", join_media("mm_data/image", require_text(raw, "image_path"))),
                ("audio_path", join_media("mm_data/audio", require_text(raw, "audio_path"))),
            ],
        )


class DailyOmniAdapter(BenchmarkAdapter):
    name = "dailyomni"
    expects = "qa.json with videos at Videos/<video_id>/<video_id>_video.mp4"
    annotation_globs = (("qa.json",),)
    id_fields = ("video_id",)

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        for label, raw in super().records(path):
            if isinstance(raw, dict):
                raw = {**raw, "_position": label.split(" ")[0]}
            yield label, raw

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        video_id = require_text(raw, "video_id")
        choices = option_list(raw, "Choice")
        return Draft(
            native_id=f"{video_id}/{raw['_position']}",
            task=require_text(raw, "Type"),
            question=require_text(raw, "Question"),
            answer=answer_letter(raw.get("Answer"), choices, "Answer"),
            choices=choices,
            media=[("video_id", f"Videos/{video_id}/{video_id}_video.mp4")],
        )


class WorldSenseAdapter(BenchmarkAdapter):
    name = "worldsense"
    expects = "worldsense_qa.json (video_id -> {task1: {...}, ...}) with videos at <video_id>.mp4 or videos/"
    annotation_globs = (("worldsense_qa.json",),)

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkError(
                f"{self.name}: {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
        if not isinstance(data, dict):
            raise BenchmarkError(
                f"{self.name}: {path}: expected an object video_id -> tasks, got {type(data).__name__}"
            )
        for video_id, video in data.items():
            if not isinstance(video, dict):
                yield f"{video_id}", {"_video_id": video_id, "_task_key": "", "_task": video}
                continue
            for task_key, task in video.items():
                if task_key.startswith("task"):
                    yield (
                        f"{video_id}/{task_key}",
                        {"_video_id": video_id, "_task_key": task_key, "_task": task},
                    )

    def convert(self, raw: Any, root: Path) -> Draft:
        if not raw["_task_key"]:
            raise MalformedRecordError(
                raw["_video_id"], f"expected an object of tasks, got {type(raw['_task']).__name__}"
            )
        task = require_dict(raw["_task"], raw["_task_key"])
        choices = option_list(task, "candidates")
        folder = first_existing_dir(root, ("videos",))
        return Draft(
            native_id=f"{raw['_video_id']}_{raw['_task_key']}",
            task=require_text(task, "task_type"),
            question=require_text(task, "question"),
            answer=answer_letter(task.get("answer"), choices),
            choices=choices,
            media=[("video_id", join_media(folder, f"{raw['_video_id']}.mp4"))],
        )


class IntentBenchAdapter(BenchmarkAdapter):
    name = "intentbench"
    expects = "qa.json (qid, problem_type, problem, options, answer, video) with root-relative video paths"
    annotation_globs = (("qa.json",),)
    id_fields = ("qid", "Question id")

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        qid = raw.get("qid", raw.get("Question id"))
        if qid is None or str(qid).strip() == "":
            raise MalformedRecordError("qid", "missing question id (neither 'qid' nor 'Question id')")
        kind = require_text(raw, "problem_type")
        if kind == "multiple choice":
            choices = option_list(raw, "options")
            answer = answer_letter(raw.get("answer"), choices)
        elif kind == "judge":
            choices = ["Yes", "No"]
            answer = answer_letter(raw.get("answer"), choices)
        elif kind == "emer_ov_mc":
            raise UnsupportedRecordError(
                "problem_type 'emer_ov_mc' has several correct letters; a Sample holds one"
            )
        else:
            raise MalformedRecordError("problem_type", f"unknown problem type {kind!r}")
        return Draft(
            native_id=str(qid).strip(),
            task=kind,
            question=require_text(raw, "problem"),
            answer=answer,
            choices=choices,
            media=[("video", require_text(raw, "video"))],
        )
