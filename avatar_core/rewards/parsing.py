"""Parsing of completions: the <think>/<answer> layout, option letters and numbers.

Every reward reads completions through these functions, so "what the model answered" means the
same thing for accuracy, self-consistency and the judge.

Departures from the authors' released code (R1-V style regexes), on purpose:
- No fallback to the whole completion when there is no `<answer>` block: a completion without
  one has no answer (accuracy 0, no vote), as DESIGN.md states for unparsable answers. The
  released code scores the raw text instead, which rewards skipping the format.
- Several `<answer>` blocks make the answer ambiguous (None) instead of taking the first one,
  so hedging ("<answer>A</answer><answer>B</answer>") cannot collect the reward.
- Numbers: a text naming two different numbers ("3 or 4") is unparsable; the released code
  calls `float()` on the stripped text. Number words zero..twenty are read as numbers.
- A well-formed completion needs non-empty think and answer blocks: an empty `<think></think>`
  is the shortcut a small policy finds first, and it should not earn the format reward.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from avatar_core.data.schema import OPTION_LETTERS

_TAG = re.compile(r"</?(?:think|answer)>")
_WELL_FORMED = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

NUMBER_WORDS = {
    word: float(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
# A digit number (sign, thousands separators, decimals, exponent) or a number word, whole words only.
_NUMBER = re.compile(
    r"(?<![\w.])([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+)(?![\w])"
    r"|\b(" + "|".join(NUMBER_WORDS) + r")\b",
    re.IGNORECASE,
)
# "B", "(B)", "[b]", "B.", "B)", "B: dog", "B. dog", "option B", "The answer is B"
_LETTER = re.compile(
    r"(?:(?:the\s+)?answer(?:\s+is)?\s*:?\s*)?(?:option\s+)?[(\[]?([A-Za-z])[)\]]?(?:\s*[.:)\-]\s*|\s+|$)(.*)",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedCompletion:
    """What a completion says: its reasoning, its answer, and whether the layout is exact.

    `think` / `answer` are the stripped contents of the single `<think>` / `<answer>` block, None
    when the block is missing, duplicated, empty or contains another tag. `well_formed` is True
    only when the whole string is exactly one think block then one answer block (whitespace
    around the tags allowed, nothing else outside them, no nested tags).
    """

    think: str | None
    answer: str | None
    well_formed: bool


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational form (a list of messages).

    >>> completion_text([{"role": "assistant", "content": "<answer>B</answer>"}])
    '<answer>B</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal message: join its text parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    raise TypeError(
        f"a completion must be a string or a list of chat messages, got {type(completion).__name__}"
    )


def _single_block(pattern: re.Pattern[str], text: str) -> str | None:
    blocks = pattern.findall(text)
    if len(blocks) != 1:
        return None
    content = blocks[0].strip()
    if not content or _TAG.search(content):
        return None
    return content


def parse_completion(text: str) -> ParsedCompletion:
    """Split a completion into its think and answer parts and check the exact layout.

    >>> parse_completion("  <think>two beeps</think>\\n<answer> B </answer>\\n")
    ParsedCompletion(think='two beeps', answer='B', well_formed=True)
    >>> parse_completion("Sure! <think>x</think><answer>B</answer>").well_formed
    False
    >>> parse_completion("<answer>A</answer><answer>B</answer>").answer is None
    True
    """
    think = _single_block(_THINK_BLOCK, text)
    answer = _single_block(_ANSWER_BLOCK, text)
    match = _WELL_FORMED.fullmatch(text)
    well_formed = bool(
        match is not None
        and len(_TAG.findall(text)) == 4  # exactly the four tags: nothing nested or repeated
        and match.group(1).strip()
        and match.group(2).strip()
    )
    return ParsedCompletion(think=think, answer=answer, well_formed=well_formed)


def _normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed, surrounding punctuation and quotes removed."""
    return " ".join(text.casefold().split()).strip(" .,;:!?\"'`()[]")


def normalise_choice(answer: str, choices: list[str]) -> str | None:
    """The option letter an answer names, or None if it names no option (or contradicts itself).

    Accepts the letter in any case, with brackets or a trailing period, the letter followed by
    its option text, or the option text alone. A letter followed by another option's text is a
    contradiction and gives None.

    >>> [normalise_choice(a, ["cat", "dog", "bird"]) for a in ["b", "(B)", "B.", "B. dog", "dog", "Dog."]]
    ['B', 'B', 'B', 'B', 'B', 'B']
    >>> normalise_choice("B. cat", ["cat", "dog"]) is None, normalise_choice("E", ["cat", "dog"]) is None
    (True, True)
    """
    text = answer.strip()
    letters = OPTION_LETTERS[: len(choices)]
    by_text: dict[str, str] = {}
    for letter, choice in zip(letters, choices, strict=False):
        by_text.setdefault(_normalise_text(choice), letter)

    whole = _normalise_text(text)
    if whole in by_text:  # option text first: a choice text may itself be a single word
        return by_text[whole]
    match = _LETTER.fullmatch(text)
    if match is None:
        return None
    letter, rest = match.group(1).upper(), _normalise_text(match.group(2))
    if letter not in letters:
        return None
    if rest and by_text.get(rest) != letter:
        return None
    return letter


_LETTER_RUN = re.compile(r"[A-Za-z](?:\s*(?:,|;|\band\b|\s)\s*[A-Za-z])*")


def normalise_choices(answer: str, choices: list[str]) -> frozenset[str] | None:
    """The set of option letters a multi-label answer names ("B, E", "B and E", "B E", "dog; bird"),
    or None when any part names no option.

    >>> sorted(normalise_choices("b, E", list("abcdef"))), sorted(normalise_choices("dog; bird", ["cat", "dog", "bird"]))
    (['B', 'E'], ['B', 'C'])
    >>> normalise_choices("B, X", ["cat", "dog"]) is None
    True
    """
    text = answer.strip()
    if _LETTER_RUN.fullmatch(text):  # bare letters: "B E", "B and E"
        parts = re.findall(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z])", re.sub(r"\band\b", ",", text))
    else:
        parts = [part for part in re.split(r"[,;]", text) if part.strip()]
    letters = [normalise_choice(part, choices) for part in parts]
    if not letters or any(letter is None for letter in letters):
        return None
    return frozenset(letters)  # type: ignore[arg-type]


def _number_value(match: re.Match[str]) -> float:
    digits, word = match.group(1), match.group(2)
    if word is not None:
        return NUMBER_WORDS[word.lower()]
    return float(digits.replace(",", ""))


def numbers_in(text: str) -> list[float]:
    """Every number a text states, digits or words, in order.

    >>> numbers_in("Three flashes, then 2 beeps at -1.5 dB")
    [3.0, 2.0, -1.5]
    """
    return [_number_value(m) for m in _NUMBER.finditer(text)]


def parse_number(answer: str) -> float | None:
    """The number an answer states, or None if it states none, several different ones, or a non-finite one.

    >>> [parse_number(a) for a in ["3", " 3.0 ", "three", "3 beeps", "-2.5", "1,200", "3 (three)"]]
    [3.0, 3.0, 3.0, 3.0, -2.5, 1200.0, 3.0]
    >>> parse_number("3 or 4") is None, parse_number("many") is None, parse_number("nan") is None
    (True, True, True)
    """
    values = set(numbers_in(answer))
    if len(values) != 1:
        return None
    value = values.pop()
    return value if math.isfinite(value) else None
