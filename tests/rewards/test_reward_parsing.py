"""Completion layout, option letters and numbers, on hand-worked strings."""

from __future__ import annotations

import pytest

from avatar_core.rewards.parsing import (
    ParsedCompletion,
    completion_text,
    normalise_choice,
    numbers_in,
    parse_completion,
    parse_number,
)

CHOICES = ["cat", "dog", "red bird"]


@pytest.mark.parametrize(
    "text",
    [
        "<think>two beeps</think><answer>B</answer>",
        "  \n<think>two beeps</think>\n\n<answer>B</answer>\n ",
        "<think>\nline one\nline two\n</think>\t<answer>\nB\n</answer>",
    ],
)
def test_well_formed_layouts(text: str) -> None:
    parsed = parse_completion(text)
    assert parsed.well_formed
    assert parsed.answer == "B"
    assert parsed.think is not None and parsed.think.startswith(("two", "line"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Sure. <think>a</think><answer>B</answer>", "text before the tags"),
        ("<think>a</think><answer>B</answer> done", "text after the tags"),
        ("<think>a</think> so <answer>B</answer>", "text between the tags"),
        ("<answer>B</answer><think>a</think>", "wrong order"),
        ("<think>a</think>", "missing answer"),
        ("<answer>B</answer>", "missing think"),
        ("<think>a <think>b</think></think><answer>B</answer>", "nested think"),
        ("<think>a <answer>C</answer></think><answer>B</answer>", "answer nested in think"),
        ("<think>a</think><think>b</think><answer>B</answer>", "duplicated think"),
        ("<think>a</think><answer>B</answer><answer>C</answer>", "duplicated answer"),
        ("<think></think><answer>B</answer>", "empty think"),
        ("<think>a</think><answer>  </answer>", "empty answer"),
        ("<THINK>a</THINK><ANSWER>B</ANSWER>", "tags are lower case only"),
        ("<think>a</think><answer>B", "unclosed answer"),
        ("", "empty completion"),
    ],
)
def test_malformed_layouts(text: str, why: str) -> None:
    assert not parse_completion(text).well_formed, why


def test_answer_is_read_without_the_full_layout_but_never_when_ambiguous() -> None:
    assert parse_completion("I think <answer> C </answer>") == ParsedCompletion(None, "C", False)
    assert parse_completion("<think>a</think><answer>B</answer><answer>C</answer>").answer is None
    assert parse_completion("<think>a</think><answer></answer>").answer is None
    assert parse_completion("just B").answer is None
    assert parse_completion("<answer>a <think>x</think></answer>").answer is None


def test_completion_text_accepts_strings_and_chat_messages() -> None:
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "y"}]) == "y"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert completion_text(parts) == "ab"
    with pytest.raises(TypeError, match="got int"):
        completion_text(3)


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("b", "B"),
        ("B", "B"),
        ("(B)", "B"),
        ("[b]", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("B: dog", "B"),
        ("B. dog", "B"),
        ("b) Dog", "B"),
        ("dog", "B"),
        ("  DOG. ", "B"),
        ("option C", "C"),
        ("The answer is A", "A"),
        ("Answer: c", "C"),
        ("red bird", "C"),
        ("Red  Bird", "C"),
        ("C. red bird", "C"),
    ],
)
def test_normalise_choice_accepts(answer: str, letter: str) -> None:
    assert normalise_choice(answer, CHOICES) == letter


@pytest.mark.parametrize(
    "answer",
    ["D", "E.", "B. cat", "horse", "", "AB", "bird", "dogs", "A or B"],
)
def test_normalise_choice_rejects(answer: str) -> None:
    assert normalise_choice(answer, CHOICES) is None


def test_normalise_choice_prefers_option_text_over_a_letter_reading() -> None:
    # a one-letter option text "b" is option A, not the letter B
    assert normalise_choice("b", ["b", "a"]) == "A"
    assert normalise_choice("a", ["b", "a"]) == "B"
    assert normalise_choice("A", []) is None


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("3", 3.0),
        (" 3.0 ", 3.0),
        ("three", 3.0),
        ("Three", 3.0),
        ("3 beeps", 3.0),
        ("I counted twenty", 20.0),
        ("zero", 0.0),
        ("-2", -2.0),
        ("-0.5 seconds", -0.5),
        ("+4", 4.0),
        (".5", 0.5),
        ("1,200", 1200.0),
        ("1e3", 1000.0),
        ("3 (three)", 3.0),
        ("3.", 3.0),
    ],
)
def test_parse_number_reads(answer: str, value: float) -> None:
    assert parse_number(answer) == value


@pytest.mark.parametrize(
    "answer", ["", "many", "3 or 4", "two and 3", "nan", "inf", "1e999", "someone", "v3"]
)
def test_parse_number_rejects(answer: str) -> None:
    assert parse_number(answer) is None


def test_numbers_in_keeps_order_and_skips_parts_of_words() -> None:
    assert numbers_in("Two flashes, 3 beeps; someone said -1.5 and x2") == [2.0, 3.0, -1.5]
