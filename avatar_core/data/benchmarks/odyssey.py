"""Adapter for AV-Odyssey Bench, in the two layouts it is distributed in.

Follows AV-Odyssey/AV-Odyssey `evaluation.py` (the creators) and EvolvingLMMs-Lab/lmms-eval
`lmms_eval/tasks/av_odyssey/utils.py` (the export the AVATAR authors evaluated).

- creators' release (AV-Odyssey/AV_Odyssey_Bench on Hugging Face): `av_odyssey_part*.parquet` (in
  the folder or `data/AV_Odyssey_Bench/`), columns `question_id`, `question_type_id` (the 26
  tasks), `data_type` (image / video), `subfield` (the 7 groups the leaderboard reports: Timbre,
  Tone, Melody, Space, Time, Hallucination, Intricacy), `question`, `options` (4 texts), `answer`
  (letter), `image_1..4`, `video_1`, `audio_1..4`. Media are embedded as bytes (or given as
  paths); embedded files are written once under `_extracted/` (see embedded.py).
- lmms-eval export (AV-Odyssey/AV_Odyssey_Bench_LMMs_Eval): `av_odyssey.json` (or `.jsonl`,
  `.parquet`; in the folder or `AV_Odyssey_Bench_LMMs_Eval/`), the same question fields with the
  media as lists of paths `image_path`, `video_path`, `audio_path`, relative to the folder that
  holds the file. The release's per-task zips unpack one folder deeper, so a path `Timbre/x.wav`
  may sit at `Timbre/Timbre/x.wav` (a fork of lmms-eval joins it that way); both are looked for.

Video questions take `video_1` / `video_path[0]` as the primary clip, image questions the first
image; further images and the audio files go to `Sample.extra_media` (lmms-eval likewise ignores
the images of a video question). Category: `subfield` (`type_<question_type_id>` when empty).
"""

from __future__ import annotations

from typing import Any

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    Context,
    Draft,
    Layout,
    MalformedRecordError,
    MediaRef,
    answer_letter,
    join_media,
    option_list,
    require_dict,
    require_id,
    require_text,
)
from avatar_core.data.benchmarks.embedded import media_value

_EXPORT_FILES = ("av_odyssey.json", "av_odyssey.jsonl", "av_odyssey.parquet")


class AVOdysseyAdapter(BenchmarkAdapter):
    name = "avodyssey"
    expects = (
        "av_odyssey_part*.parquet (the creators' release) or av_odyssey.json with image_path / "
        "video_path / audio_path lists (the lmms-eval export, AV_Odyssey_Bench_LMMs_Eval/)"
    )
    follows = (
        "AV-Odyssey/AV-Odyssey: evaluation.py",
        "EvolvingLMMs-Lab/lmms-eval: lmms_eval/tasks/av_odyssey/utils.py",
    )
    layouts = (
        Layout(
            "creators",
            "creators' Hugging Face release (AV_Odyssey_Bench): av_odyssey_part*.parquet, media embedded",
            ("av_odyssey_part*.parquet", "data/AV_Odyssey_Bench/av_odyssey_part*.parquet"),
        ),
        Layout(
            "lmms_eval",
            "lmms-eval export (AV_Odyssey_Bench_LMMs_Eval): av_odyssey.json with image_path / video_path / audio_path lists",
            _EXPORT_FILES + tuple(f"AV_Odyssey_Bench_LMMs_Eval/{f}" for f in _EXPORT_FILES),
        ),
    )
    id_fields = ("question_id",)

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        qid = require_id(raw, "question_id")
        data_type = require_text(raw, "data_type")
        kind = "video" if "video" in data_type else "image" if "image" in data_type else ""
        if not kind:
            raise MalformedRecordError(
                "data_type", f"expected a type naming image or video, got {data_type!r}"
            )
        choices = option_list(raw, "options")
        media = _embedded(raw, qid, kind, ctx) if ctx.layout.key == "creators" else _listed(raw, kind, ctx)
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


def _embedded(raw: dict[str, Any], qid: str, kind: str, ctx: Context) -> list[MediaRef]:
    """Creators' columns image_1..4 / video_1 / audio_1..4, the primary visual first."""
    primary = f"{kind}_1"
    columns = [primary] + [f"image_{k}" for k in range(1, 5) if f"image_{k}" != primary]
    media: list[MediaRef] = [
        (c, rel)
        for c in columns + [f"audio_{k}" for k in range(1, 5)]
        if (rel := media_value(raw, c, qid, ctx.root))
    ]
    if not media or media[0][0] != primary:
        raise MalformedRecordError(primary, f"a {kind} question needs a {primary} file, found none")
    return media


def _listed(raw: dict[str, Any], kind: str, ctx: Context) -> list[MediaRef]:
    """lmms-eval's path lists; each path is looked for as given and one folder deeper."""

    def paths(key: str) -> list[str]:
        value = raw.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise MalformedRecordError(key, f"expected a list of path strings, got {value!r}")
        return [v.strip() for v in value]

    def places(rel: str) -> tuple[str, ...]:
        first = rel.replace("\\", "/").split("/")[0]
        return (join_media(ctx.base, rel), join_media(ctx.base, f"{first}/{rel}"))

    visual_key = f"{kind}_path"
    visuals, audios = paths(visual_key), paths("audio_path")
    if not visuals:
        raise MalformedRecordError(visual_key, f"a {kind} question needs at least one {kind} path")
    media: list[MediaRef] = [(f"{visual_key}[{i}]", places(p)) for i, p in enumerate(visuals)]
    media += [(f"audio_path[{i}]", places(p)) for i, p in enumerate(audios)]
    return media
