"""Adapters for OmniBench, Daily-Omni and WorldSense.

- omnibench. Follows multimodal-art-projection/OmniBench `README.md` (the GitHub release) and
  EvolvingLMMs-Lab/lmms-eval `lmms_eval/tasks/omni_bench/utils.py` (the Hugging Face parquet).
  Layouts: the GitHub release, `dataset/batch-5_1142_20240817.jsonl` (any `dataset/*.jsonl`) with
  keys `index`, `task type`, `audio type`, `question`, `options` (texts), `answer` (the option
  *text*), `image_path` / `audio_path` (file names under `mm_data/image/` and `mm_data/audio/`);
  and the Hugging Face parquet (`data/*.parquet`, as m-a-p/OmniBench and lmms-eval's
  lmms-lab/Omni_Bench_fix ship it) with the same question fields and `image` / `audio` embedded,
  written out once under `_extracted/` (see embedded.py); a row without `index` is numbered by
  its position. The image is the primary visual (`Sample.video`), the audio file goes to
  `Sample.extra_media`. Category: `task type` (lmms-eval reports accuracy per task type).
- dailyomni. Follows the creators' Hugging Face release (liarliar/Daily-Omni) as their
  `test_model/*/testmodel.py` scripts read it: `qa.json` (list), keys `Question`, `Choice`
  ("A. ..." strings), `Answer` (letter), `video_id`, `Type` (the category); video at
  `Videos/<video_id>/<video_id>_video.mp4`. Records carry no question id; the id is
  `<video_id>/<position>`.
- worldsense. Follows the creators' release (honglyhly/WorldSense) as the AVATAR authors' WorldSense
  script reads it: `worldsense_qa.json`, an object video_id -> {`domain`, ..., `task1`:
  {`question`, `candidates`, `answer`, `task_type`, `task_domain`}, `task2`: ...}; video at
  `videos/<video_id>.mp4` (the release's folder) or `<video_id>.mp4`. Category: `task_type`.
  lmms-eval reads a flat re-export (winvswon78/worldsensesub: `index`, `video_path`,
  `candidates`, ...) whose file could not be inspected, so it is not read here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    BenchmarkError,
    Context,
    Draft,
    Layout,
    MalformedRecordError,
    answer_letter,
    join_media,
    option_list,
    read_json_value,
    require_dict,
    require_id,
    require_text,
)
from avatar_core.data.benchmarks.embedded import media_value


class OmniBenchAdapter(BenchmarkAdapter):
    name = "omnibench"
    expects = (
        "dataset/batch-5_1142_20240817.jsonl with media in mm_data/image/ and mm_data/audio/, "
        "or the Hugging Face parquet data/*.parquet"
    )
    follows = (
        "multimodal-art-projection/OmniBench: README.md",
        "EvolvingLMMs-Lab/lmms-eval: lmms_eval/tasks/omni_bench/utils.py",
    )
    layouts = (
        Layout(
            "github",
            "creators' GitHub release: dataset/*.jsonl, media in mm_data/image/ and mm_data/audio/",
            ("dataset/*.jsonl", "*.jsonl"),
        ),
        Layout(
            "parquet",
            "Hugging Face parquet (m-a-p/OmniBench, lmms-eval's Omni_Bench_fix): image and audio embedded",
            ("data/*.parquet", "*.parquet"),
        ),
    )
    id_fields = ("index",)

    def records(self, path: Path, layout: Layout) -> Iterator[tuple[str, Any]]:
        for position, (label, raw) in enumerate(super().records(path, layout)):
            if isinstance(raw, dict) and "index" not in raw and layout.key == "parquet":
                raw = {**raw, "index": position}
            yield label, raw

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        qid = require_id(raw, "index")
        choices = option_list(raw, "options")
        if ctx.layout.key == "github":
            media = [
                ("image_path", join_media("mm_data/image", require_text(raw, "image_path"))),
                ("audio_path", join_media("mm_data/audio", require_text(raw, "audio_path"))),
            ]
        else:
            media = [(column, media_value(raw, column, qid, ctx.root)) for column in ("image", "audio")]
            for column, rel in media:
                if not rel:
                    raise MalformedRecordError(column, "no embedded file or path")
        return Draft(
            native_id=qid,
            task=require_text(raw, "task type"),
            question=require_text(raw, "question"),
            answer=answer_letter(raw.get("answer"), choices),
            choices=choices,
            media=media,  # type: ignore[arg-type]
        )


class DailyOmniAdapter(BenchmarkAdapter):
    name = "dailyomni"
    expects = "qa.json with videos at Videos/<video_id>/<video_id>_video.mp4"
    follows = (
        "liarliar/Daily-Omni (Hugging Face): qa.json, as the creators' test_model/*/testmodel.py read it",
    )
    layouts = (
        Layout(
            "creators",
            "creators' Hugging Face release: qa.json, clips at Videos/<video_id>/<video_id>_video.mp4",
            ("qa.json",),
        ),
    )
    id_fields = ("video_id",)
    with_position = True  # several questions share a video_id: the position tells them apart

    def convert(self, raw: Any, ctx: Context) -> Draft:
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
    expects = "worldsense_qa.json (video_id -> {task1: {...}, ...}) with videos at videos/<video_id>.mp4"
    follows = (
        "honglyhly/WorldSense (Hugging Face): worldsense_qa.json, as the AVATAR authors' WorldSense script reads it",
    )
    layouts = (
        Layout(
            "creators",
            "creators' Hugging Face release: worldsense_qa.json keyed by video, clips in videos/ (or the folder)",
            ("worldsense_qa.json",),
        ),
    )

    def records(self, path: Path, layout: Layout) -> Iterator[tuple[str, Any]]:
        data = read_json_value(self.name, path)
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

    def convert(self, raw: Any, ctx: Context) -> Draft:
        if not raw["_task_key"]:
            raise MalformedRecordError(
                raw["_video_id"], f"expected an object of tasks, got {type(raw['_task']).__name__}"
            )
        task = require_dict(raw["_task"], raw["_task_key"])
        choices = option_list(task, "candidates")
        name = f"{raw['_video_id']}.mp4"
        return Draft(
            native_id=f"{raw['_video_id']}_{raw['_task_key']}",
            task=require_text(task, "task_type"),
            question=require_text(task, "question"),
            answer=answer_letter(task.get("answer"), choices),
            choices=choices,
            media=[("video_id", (f"videos/{name}", name))],
        )
