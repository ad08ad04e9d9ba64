"""Adapters for the video benchmarks: AV-Counting (CG-AV-Counting), MMVU, Video-Holmes.

- avcounting. The AVATAR paper's AV-Counting is CG-AV-Counting (AV-Reasoner). Follows
  AV-Reasoner/AV-Reasoner `eval/interface_long_acc.py` (the creators' long-video protocol) and
  open-compass/VLMEvalKit's CG-AV-Counting dataset class (which reads the same Hugging Face
  release, CG-Bench/CG-AV-Counting). `cg-av-counting.json` (list), keys `index`, `video` (file
  name), `question_en` (the creators' prompt) or `question` (VLMEvalKit's), `answer` (a count),
  `category` (object / event / attribute: the category the creators report). Clips in
  `cg_videos_720p/` (the release's zip; both sources look there), else `videos/` or the folder
  itself. Answers are numeric. Only the long-video protocol is converted; the reference-clip and
  clue-grounding protocols are not.
- mmvu. Follows the creators' release (yale-nlp/MMVU): `validation.json` (or `data/validation.json`),
  keys `id`, `video` (a Hugging Face URL whose part after `/resolve/main/` is the path inside the
  downloaded data set, e.g. `videos/Art/0.mp4`), `question_type`, `question`, `choices`
  ({"A": text, ...}), `answer`, `metadata.subject` (the category). Open-ended questions are
  skipped (reported): they need a model judge.
- videoholmes. Follows TencentARC/Video-Holmes `evaluate.py` and `download.py` (the creators) and
  EvolvingLMMs-Lab/lmms-eval `lmms_eval/tasks/video_holmes/utils.py` / VLMEvalKit's Video_Holmes
  class (the Hugging Face snapshot). `test_Video-Holmes.json` (list), keys `Question ID` (an
  integer numbered per video: 1, 2, ... again for the next video), `video ID`, `Question Type`
  (SR, IMC, TCI, TA, MHR, PAR, CTI: the category), `Question`, `Options` ({"A": text, ...}),
  `Answer` (letter). The sample id is `<video ID>/<Question ID>`, unique across videos, as
  third-party loaders build it. Layouts: the creators' download (`Benchmark/` holding the JSON;
  evaluate.py reads clips from `Benchmark/videos/`, while unzipping the release's videos.zip
  gives `Benchmark/videos_cropped/`) and the plain snapshot (JSON at the top, clips in
  `videos_cropped/` as lmms-eval reads them, or `video/` as VLMEvalKit flattens them). A clip is
  looked for in `videos/`, `videos_cropped/` and `video/` beside the JSON, in that order.
"""

from __future__ import annotations

import math
from typing import Any

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    Context,
    Draft,
    Layout,
    MalformedRecordError,
    UnsupportedRecordError,
    answer_letter,
    join_media,
    option_dict,
    require_dict,
    require_id,
    require_text,
)


class AVCountingAdapter(BenchmarkAdapter):
    name = "avcounting"
    expects = "cg-av-counting.json with the clips in cg_videos_720p/"
    follows = (
        "AV-Reasoner/AV-Reasoner: eval/interface_long_acc.py, eval/black_box_evaluation.py",
        "open-compass/VLMEvalKit: the CG-AV-Counting dataset class",
    )
    layouts = (
        Layout(
            "creators",
            "creators' Hugging Face release (CG-Bench/CG-AV-Counting): cg-av-counting.json, clips in cg_videos_720p/",
            ("cg-av-counting.json",),
        ),
    )
    id_fields = ("index",)

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        question_key = "question_en" if isinstance(raw.get("question_en"), str) else "question"
        video = require_text(raw, "video")
        return Draft(
            native_id=require_id(raw, "index"),
            task=require_text(raw, "category"),
            question=require_text(raw, question_key),
            answer=_count(raw.get("answer")),
            answer_type="numeric",
            media=[("video", (f"cg_videos_720p/{video}", f"videos/{video}", video))],
        )


def _count(value: Any) -> str:
    """A count as text: '7' for 7, 7.0 or '7'; negatives, NaN and non-numbers are malformed."""
    if isinstance(value, bool):
        raise MalformedRecordError("answer", f"expected a count, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedRecordError("answer", f"expected a count, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise MalformedRecordError("answer", f"expected a non-negative finite count, got {value!r}")
    return str(int(number)) if number.is_integer() else str(number)


_HF_MARKER = "/resolve/main/"


class MMVUAdapter(BenchmarkAdapter):
    name = "mmvu"
    expects = "validation.json (or data/validation.json) with videos at videos/<Subject>/<n>.mp4"
    follows = ("yale-nlp/MMVU (Hugging Face): validation.json",)
    layouts = (
        Layout(
            "creators",
            "creators' Hugging Face release (yale-nlp/MMVU): validation.json, clips in videos/<Subject>/",
            ("validation.json", "data/validation.json"),
        ),
    )
    id_fields = ("id",)

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        kind = require_text(raw, "question_type")
        if kind == "open-ended":
            raise UnsupportedRecordError(
                "question_type 'open-ended' has no options; only multiple-choice is converted"
            )
        if kind != "multiple-choice":
            raise MalformedRecordError("question_type", f"unknown question type {kind!r}")
        metadata = raw.get("metadata")
        if not isinstance(metadata, dict):
            raise MalformedRecordError("metadata", f"expected an object holding 'subject', got {metadata!r}")
        choices = option_dict(raw, "choices")
        video = require_text(raw, "video")
        if _HF_MARKER in video:
            video = video.split(_HF_MARKER, 1)[1]
        elif "://" in video:
            raise MalformedRecordError(
                "video", f"URL {video!r} is not a Hugging Face file URL ({_HF_MARKER})"
            )
        return Draft(
            native_id=require_text(raw, "id"),
            task=require_text(metadata, "subject"),
            question=require_text(raw, "question"),
            answer=answer_letter(raw.get("answer"), choices),
            choices=choices,
            media=[("video", video)],
        )


VIDEO_HOLMES_CLIP_FOLDERS = ("videos", "videos_cropped", "video")


class VideoHolmesAdapter(BenchmarkAdapter):
    name = "videoholmes"
    expects = "Benchmark/test_Video-Holmes.json (or test_Video-Holmes.json) with the clips in videos/ or videos_cropped/ beside it"
    follows = (
        "TencentARC/Video-Holmes: evaluate.py, download.py",
        "EvolvingLMMs-Lab/lmms-eval: lmms_eval/tasks/video_holmes/utils.py",
        "open-compass/VLMEvalKit: the Video_Holmes dataset class",
    )
    layouts = (
        Layout(
            "creators",
            "creators' download (download.py): Benchmark/test_Video-Holmes.json, clips in Benchmark/videos/ or videos_cropped/",
            ("Benchmark/test_Video-Holmes.json",),
        ),
        Layout(
            "snapshot",
            "Hugging Face snapshot (TencentARC/Video-Holmes, as lmms-eval and VLMEvalKit read it): "
            "test_Video-Holmes.json, clips in videos_cropped/ (or videos/, video/)",
            ("test_Video-Holmes.json",),
        ),
    )
    id_fields = ("video ID", "Question ID")

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        choices = option_dict(raw, "Options")
        video_id = require_id(raw, "video ID")
        name = f"{video_id}.mp4"
        return Draft(
            native_id=f"{video_id}/{require_id(raw, 'Question ID')}",
            task=require_text(raw, "Question Type"),
            question=require_text(raw, "Question"),
            answer=answer_letter(raw.get("Answer"), choices, "Answer"),
            choices=choices,
            media=[
                ("video ID", tuple(join_media(ctx.base, f"{d}/{name}") for d in VIDEO_HOLMES_CLIP_FOLDERS))
            ],
        )
