"""Adapter for IntentBench (HumanOmniV2), read the way its creators read it.

Follows HumanMLLM/HumanOmniV2 `src/open-r1-multimodal/eval/eval_humanomniv2.py` (the creators'
evaluation) and accepts what the AVATAR authors' IntentBench script reads where it is unambiguous.

- Files: `qa.json` (a JSON list) beside `videos/` (the release's videos.zip, PhilipC/IntentBench on
  Hugging Face). The creators join `IntentBench/videos` with the record's `video` field (or
  `path` when there is no `video`); the AVATAR authors' script joins the folder root with
  `video`. Both layouts are detected (`videos/` present or not) and a clip is looked for where
  the detected layout puts it first, then where the other one does.
- Answer: the creators score from `solution` (`<answer>B</answer>`, `<answer>B,E</answer>` or
  `<answer>Yes</answer>`); the AVATAR authors' script reads a bare `answer` field. `solution` wins;
  `answer` is used when a record has no `solution`.
- Question id: `qid` or `Question id` (AVATAR authors' script); the creators' script keeps no id,
  so a record without either is numbered by its position in the file.
- `problem_type` (the category; the creators and the AVATAR authors report per type):
  `multiple choice` -> one letter; `emer_ov_mc` (emotions, several correct letters) -> a
  multi-label Sample (`answer_type` "multi", answer "B,E"), scored by the F1 the creators use
  (avatar_core.evaluation.official); `judge` (deception, Yes/No) -> two options Yes / No.
  Any other type is malformed (IntentBench has only these three).
"""

from __future__ import annotations

import re
from typing import Any

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    Context,
    Draft,
    Layout,
    MalformedRecordError,
    answer_letter,
    option_list,
    require_dict,
    require_text,
)
from avatar_core.data.schema import OPTION_LETTERS

_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
JUDGE_CHOICES = ["Yes", "No"]


def solution_answer(raw: dict[str, Any]) -> tuple[str, str]:
    """(field, answer text): the `<answer>` of `solution` when present, else the bare `answer`."""
    solution = raw.get("solution")
    if solution is not None:
        if not isinstance(solution, str):
            raise MalformedRecordError("solution", f"expected a string, got {type(solution).__name__}")
        match = _ANSWER_TAG.search(solution)
        text = match.group(1) if match else solution.strip()
        if not text:
            raise MalformedRecordError("solution", f"no answer in {solution!r}")
        return "solution", text
    return "answer", require_text(raw, "answer")


def multi_letters(text: str, choices: list[str], key: str) -> str:
    """'B,E' for an answer naming options B and E ('B, E', 'e,b' too); duplicates or unknown letters are malformed."""
    letters = [part.strip().upper() for part in text.split(",") if part.strip()]
    valid = OPTION_LETTERS[: len(choices)]
    if not letters or any(len(x) != 1 or x not in valid for x in letters) or len(set(letters)) < len(letters):
        raise MalformedRecordError(
            key, f"answer {text!r} is not a comma-separated set of option letters in {valid}"
        )
    return ",".join(sorted(letters))


class IntentBenchAdapter(BenchmarkAdapter):
    name = "intentbench"
    expects = "qa.json (problem_type, problem, options, solution, video) with the clips in videos/"
    follows = (
        "HumanMLLM/HumanOmniV2: src/open-r1-multimodal/eval/eval_humanomniv2.py",
        "AVATAR authors (people-robots.github.io/AVATAR): their IntentBench evaluation script (answer, qid; clips under the folder root)",
    )
    layouts = (
        Layout(
            "creators",
            "creators' release (PhilipC/IntentBench): qa.json, clips in videos/ + the record's video field",
            ("qa.json",),
            requires_dir="videos",
        ),
        Layout(
            "root",
            "AVATAR authors' layout: qa.json, clip paths relative to the folder itself",
            ("qa.json",),
        ),
    )
    id_fields = ("qid", "Question id")
    with_position = True  # a record without a qid is named by its position

    def convert(self, raw: Any, ctx: Context) -> Draft:
        raw = require_dict(raw)
        qid = raw.get("qid", raw.get("Question id"))
        if isinstance(qid, bool) or (
            qid is not None and (not isinstance(qid, int | str) or not str(qid).strip())
        ):
            raise MalformedRecordError("qid", f"expected an integer or string question id, got {qid!r}")
        kind = require_text(raw, "problem_type")
        key, text = solution_answer(raw)
        answer_type = "mc"
        if kind == "multiple choice":
            choices = option_list(raw, "options")
            answer = answer_letter(text, choices, key)
        elif kind == "emer_ov_mc":
            choices = option_list(raw, "options")
            answer, answer_type = multi_letters(text, choices, key), "multi"
        elif kind == "judge":
            choices = list(JUDGE_CHOICES)
            answer = answer_letter(text, choices, key)
        else:
            raise MalformedRecordError(
                "problem_type", f"unknown problem type {kind!r} (multiple choice, emer_ov_mc, judge)"
            )
        video_key = "video" if "video" in raw else "path"
        video = require_text(raw, video_key)
        places = (f"videos/{video}", video) if ctx.layout.key == "creators" else (video, f"videos/{video}")
        return Draft(
            native_id=str(qid).strip() if qid is not None else f"#{raw['_position']}",
            task=kind,
            question=require_text(raw, "problem"),
            answer=answer,
            answer_type=answer_type,
            choices=choices,
            media=[(video_key, places)],
        )
