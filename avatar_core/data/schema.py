"""The record every data source is converted into, and how a record becomes a chat prompt.

A `Sample` is one question about one clip. The synthetic generator, the JSONL/Arrow ingesters and
the benchmark adapters all produce it; rewards, the judge, the recipes and evaluation consume it.
`id` is the stable prompt id: difficulty, replay and hint state are keyed by it, never by the
rendered prompt text (a hint changes the text, not the key).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

AnswerType = Literal["mc", "numeric", "multi"]
OPTION_LETTERS = "ABCDEFGHIJ"
ANSWER_TYPES = ("mc", "numeric", "multi")

SYSTEM_PROMPT = (
    "You are a helpful assistant that can see and hear. Think about the question inside "
    "<think></think> tags, then give the final answer inside <answer></answer> tags."
)


class RecordError(ValueError):
    """A record that does not fit the schema; the message names the source, record and field."""


@dataclass
class Sample:
    id: str  # stable prompt id
    task: str  # task family or benchmark task type
    question: str
    answer: str  # option letter (mc), a number as text (numeric), letters joined by commas (multi)
    answer_type: AnswerType = "mc"
    choices: list[str] = field(default_factory=list)  # option texts, in letter order
    video: str = ""  # media path relative to the data root ('' : text only)
    has_audio: bool = True
    stage: str = ""  # curriculum stage (s1/s2/s3) the sample belongs to, '' if none
    reasoning: str = ""  # a correct <think>...</think><answer>...</answer> trace, for SFT
    hint: str = ""  # a pre-computed hint, '' if none
    facts: str = "{}"  # JSON object of verifiable facts checked by the rule-based judge
    difficulty: str = ""  # easy / hard for synthetic data, '' when unknown
    source: str = ""  # data set or benchmark name
    extra_media: list[str] = field(
        default_factory=list
    )  # further media (separate audio, images), root-relative

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str = "record") -> Sample:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("id", "task", "question", "answer") if row.get(k) in (None, "")]
        if missing:
            raise RecordError(f"{where}: missing required field(s) {', '.join(missing)}")
        sample = cls(**{k: v for k, v in row.items() if k in known})
        sample.validate(where)
        return sample

    def validate(self, where: str = "record") -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise RecordError(
                f"{where}: field answer_type must be one of {', '.join(ANSWER_TYPES)}, got {self.answer_type!r}"
            )
        if self.answer_type in ("mc", "multi"):
            if len(self.choices) < 2:
                raise RecordError(f"{where}: a multiple-choice record needs at least 2 choices")
            if len(self.choices) > len(OPTION_LETTERS):
                raise RecordError(
                    f"{where}: field choices has {len(self.choices)} options; at most "
                    f"{len(OPTION_LETTERS)} ({OPTION_LETTERS[0]}-{OPTION_LETTERS[-1]}) can be lettered"
                )
            letters = OPTION_LETTERS[: len(self.choices)]
            given = (
                answer_letters(self.answer) if self.answer_type == "multi" else [self.answer.strip().upper()]
            )
            if not given or len(set(given)) < len(given) or any(x not in letters for x in given):
                raise RecordError(
                    f"{where}: field answer {self.answer!r} is not "
                    + ("one of" if self.answer_type == "mc" else "a comma-separated set of")
                    + f" the option letters {letters}"
                )
        else:
            try:
                value = float(self.answer)
            except ValueError:
                raise RecordError(f"{where}: field answer {self.answer!r} is not a number") from None
            if not math.isfinite(value):  # 'nan', 'inf', '1e999' parse, but no reward can score them
                raise RecordError(f"{where}: field answer {self.answer!r} is not a finite number")
        try:
            if not isinstance(json.loads(self.facts), dict):
                raise ValueError
        except ValueError:
            raise RecordError(f"{where}: field facts must be a JSON object, got {self.facts!r}") from None

    @property
    def fact_dict(self) -> dict[str, Any]:
        return json.loads(self.facts)


def answer_letters(answer: str) -> list[str]:
    """The option letters of a multi-label answer "B, E" (upper case, in the order given).

    >>> answer_letters("b, E"), answer_letters("C")
    (['B', 'E'], ['C'])
    """
    return [part.strip().upper() for part in answer.split(",") if part.strip()]


def format_question(sample: Sample) -> str:
    """The user text: the question, then lettered options for multiple choice."""
    if sample.answer_type == "numeric":
        return f"{sample.question}\nAnswer with a number."
    options = "\n".join(f"{OPTION_LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))
    if sample.answer_type == "multi":
        return f"{sample.question}\n{options}\nAnswer with every correct option letter, separated by commas (e.g. A,C)."
    return f"{sample.question}\n{options}\nAnswer with the option letter."


def render_messages(sample: Sample, hint: str | None = None, with_media: bool = True) -> list[dict[str, Any]]:
    """Chat messages for one prompt. A hint travels as a second system message 'Hint: ...'.

    With audio in the video, the user turn holds only the video item: the Omni processor adds the
    audio markers itself when `use_audio_in_video` is set.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    if hint:
        messages.append({"role": "system", "content": f"Hint: {hint}"})
    content: list[dict[str, Any]] = []
    if with_media and sample.video:
        content.append({"type": "video"})
    content.append({"type": "text", "text": format_question(sample)})
    messages.append({"role": "user", "content": content})
    return messages


def parse_json_line(raw: bytes, first: bool = False) -> tuple[Any, str]:
    """(decoded JSON value, '') or (None, why the line is unusable): one line of a JSON-lines file.

    A blank line gives (None, ''). Nothing a line holds raises: bytes that are not UTF-8, JSON
    nested deeper than the parser's recursion limit and over-long integer literals are reasons."""
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")  # a BOM on the first line is harmless
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1})"
    if not text.strip():
        return None, ""
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as err:
        return None, f"not valid JSON: {err.msg}"
    except RecursionError:
        return None, "JSON nested deeper than the parser's recursion limit"
    except ValueError as err:  # e.g. an integer literal beyond Python's 4300-digit conversion limit
        return None, f"not usable JSON: {err}"
