"""Adapters for the video benchmarks: AV-Counting (CG-AV-Counting), MMVU, Video-Holmes, AV-Odyssey.

Formats were read from each benchmark's released evaluation code (AV-Reasoner `eval/*.py` and the
AVATAR authors' CG-AV-Counting script, MMVU `data/validation.json` and `utils/prepare_input.py`,
Video-Holmes `evaluate.py`, AV-Odyssey `evaluation.py`).

- avcounting: the AVATAR paper's AV-Counting is CG-AV-Counting (AV-Reasoner). `cg-av-counting.json`
  (list), keys `index`, `video` (file name), `question` (the AV-Reasoner scripts read
  `question_en`; both are accepted, `question_en` first), `answer` (a count), `category`
  (event / object / attribute: the task type). Videos sit in `cg_videos_720p/` (the CG-Bench
  release), `videos/`, or the root itself. Answers are numeric: answer_type "numeric". Only the
  long-video protocol is converted; the reference-clip and clue-grounding protocols are not.
- mmvu: `validation.json` (or `data/validation.json`), keys `id`, `video` (a Hugging Face URL whose
  part after `/resolve/main/` is the path inside the downloaded data set, e.g. `videos/Art/0.mp4`),
  `question_type`, `question`, `choices` ({"A": text, ...}), `answer`, `metadata.subject` (the
  task). Confirmed from the released file. Open-ended questions are skipped (reported).
- videoholmes: `test_Video-Holmes.json` (in the root or `Benchmark/`), keys `Question ID`,
  `video ID`, `Question Type` (SR, IMC, TCI, TA, MHR, PAR, CTI), `Question`, `Options`
  ({"A": text, ...}), `Answer` (letter); videos at `videos/<video ID>.mp4` next to the JSON.
  Confirmed from `evaluate.py`.
- avodyssey: `av_odyssey_part*.parquet` (in the root or `data/AV_Odyssey_Bench/`), columns
  `question_id`, `question_type_id`, `data_type` (image / video), `subfield` (the task name),
  `question`, `options` (4 texts), `answer` (letter), `image_1..4`, `video_1`, `audio_1..4`.
  The release embeds media as bytes; this adapter writes each embedded file once to
  `_extracted/<question_id>/<column><ext>` under the root (extension from the file's magic bytes)
  and also accepts root-relative path strings. The column names are confirmed from
  `evaluation.py`; the byte encoding of the released columns could not be inspected.
"""

from __future__ import annotations

import math
import re
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
    option_dict,
    option_list,
    require_dict,
    require_text,
)


class AVCountingAdapter(BenchmarkAdapter):
    name = "avcounting"
    expects = "cg-av-counting.json with videos in cg_videos_720p/, videos/ or the folder itself"
    annotation_globs = (("cg-av-counting.json",),)
    id_fields = ("index",)

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        index = raw.get("index")
        if isinstance(index, bool) or not isinstance(index, (int, str)) or str(index).strip() == "":
            raise MalformedRecordError("index", f"expected a question id, got {index!r}")
        question_key = "question_en" if isinstance(raw.get("question_en"), str) else "question"
        folder = first_existing_dir(root, ("cg_videos_720p", "videos"))
        return Draft(
            native_id=str(index).strip(),
            task=require_text(raw, "category"),
            question=require_text(raw, question_key),
            answer=_count(raw.get("answer")),
            answer_type="numeric",
            media=[("video", join_media(folder, require_text(raw, "video")))],
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
    annotation_globs = (("validation.json",), ("data/validation.json",))
    id_fields = ("id",)

    def convert(self, raw: Any, root: Path) -> Draft:
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


class VideoHolmesAdapter(BenchmarkAdapter):
    name = "videoholmes"
    expects = "test_Video-Holmes.json (in the folder or Benchmark/) with videos/<video ID>.mp4 beside it"
    annotation_globs = (("test_Video-Holmes.json",), ("Benchmark/test_Video-Holmes.json",))
    id_fields = ("Question ID",)

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        choices = option_dict(raw, "Options")
        folder = "videos" if (root / "test_Video-Holmes.json").is_file() else "Benchmark/videos"
        return Draft(
            native_id=require_text(raw, "Question ID"),
            task=require_text(raw, "Question Type"),
            question=require_text(raw, "Question"),
            answer=answer_letter(raw.get("Answer"), choices, "Answer"),
            choices=choices,
            media=[("video ID", f"{folder}/{require_text(raw, 'video ID')}.mp4")],
        )


_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG", ".png"),
    (b"GIF8", ".gif"),
    (b"ID3", ".mp3"),
    (b"fLaC", ".flac"),
)
_MAGIC += ((b"OggS", ".ogg"), (b"\x1a\x45\xdf\xa3", ".webm"))


def _extension(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data[4:8] == b"ftyp":
        return ".mp4"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".bin")


class AVOdysseyAdapter(BenchmarkAdapter):
    name = "avodyssey"
    expects = "av_odyssey_part*.parquet (in the folder or data/AV_Odyssey_Bench/)"
    annotation_globs = (("av_odyssey_part*.parquet",), ("data/AV_Odyssey_Bench/av_odyssey_part*.parquet",))
    id_fields = ("question_id",)

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise BenchmarkError(f"{self.name}: {path}: not a readable parquet file ({exc})") from None
        for index, raw in enumerate(rows):
            yield self.describe(index, raw), raw

    def convert(self, raw: Any, root: Path) -> Draft:
        raw = require_dict(raw)
        qid = raw.get("question_id")
        if qid is None or isinstance(qid, bool) or str(qid).strip() == "":
            raise MalformedRecordError("question_id", f"missing question id (got {qid!r})")
        qid = str(qid).strip()
        data_type = require_text(raw, "data_type")
        primary = "video_1" if "video" in data_type else "image_1" if "image" in data_type else ""
        if not primary:
            raise MalformedRecordError(
                "data_type", f"expected a type naming image or video, got {data_type!r}"
            )
        choices = option_list(raw, "options")
        columns = [primary] + [f"image_{k}" for k in range(1, 5) if f"image_{k}" != primary]
        media = [
            (c, rel)
            for c in columns + [f"audio_{k}" for k in range(1, 5)]
            if (rel := _media(raw, c, qid, root))
        ]
        if not media or media[0][0] != primary:
            raise MalformedRecordError(primary, f"data_type {data_type!r} needs a {primary} file, found none")
        subfield = raw.get("subfield")
        task = (
            subfield.strip()
            if isinstance(subfield, str) and subfield.strip()
            else f"type_{raw.get('question_type_id')}"
        )
        return Draft(
            native_id=qid,
            task=task,
            question=require_text(raw, "question"),
            answer=answer_letter(raw.get("answer"), choices),
            choices=choices,
            media=media,
        )


def _media(raw: dict[str, Any], column: str, qid: str, root: Path) -> str:
    """The root-relative path of one media column ('' when empty); embedded bytes are written out once."""
    value = raw.get(column)
    if isinstance(value, dict):  # a Hugging Face Image/Audio feature: {"bytes": ..., "path": ...}
        data, name = value.get("bytes"), value.get("path") or ""
        if not data:
            value = name
        else:
            return _write_once(root, qid, column, data, Path(str(name)).suffix or _extension(data))
    if value is None or value in ("", b""):
        return ""
    if isinstance(value, bytes):
        return _write_once(root, qid, column, value, _extension(value))
    if isinstance(value, str):
        return value.strip()
    raise MalformedRecordError(
        column, f"expected a path string or embedded bytes, got {type(value).__name__}"
    )


def _write_once(root: Path, qid: str, column: str, data: bytes, suffix: str) -> str:
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", qid)
    rel = f"_extracted/{safe_id}/{column}{suffix}"
    target = root / rel
    if not target.is_file() or target.stat().st_size != len(data):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return rel
