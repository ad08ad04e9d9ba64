"""Step parsing and scoring of the teacher-forced step probe, against hand-worked traces."""

from __future__ import annotations

import torch

from avatar_core.evaluation.trace_steps import merge_counts, score_steps, step_spans, step_tokens

LOCALISE = (
    "<think>I hear 3 beeps; red flashes 1, blue flashes 3, as many; blue is at the top left.</think>"
    "<answer>A</answer>"
)


def test_spans_of_a_localise_trace_in_text_order():
    spans = step_spans(LOCALISE)
    assert [(name, LOCALISE[a:b]) for name, a, b in spans] == [
        ("beeps", "3"),
        ("colour_flashes", "1"),
        ("colour_flashes", "3"),
        ("match", ", as many"),
        ("place", "top left"),
        ("answer", "A"),
    ]


def test_spans_of_the_single_modality_traces():
    flashes = "<think>The square flashes 2 times.</think><answer>2</answer>"
    beeps = "<think>I hear 4 beeps; the flashes do not count.</think><answer>4</answer>"
    assert [(n, flashes[a:b]) for n, a, b in step_spans(flashes)] == [
        ("square_flashes", "2"),
        ("answer", "2"),
    ]
    assert [(n, beeps[a:b]) for n, a, b in step_spans(beeps)] == [("beeps", "4"), ("answer", "4")]


def test_a_trace_of_another_data_set_is_scored_on_its_answer_only():
    assert [n for n, _, _ in step_spans("<think>It is a dog.</think><answer>B</answer>")] == ["answer"]
    assert step_spans("no tags at all") == []


def test_tokens_overlapping_each_span():
    # "ab cd": tokens "ab", " c", "d"; the span "cd" (3..5) overlaps tokens 1 and 2
    offsets = [(0, 2), (2, 4), (4, 5)]
    assert step_tokens(offsets, [("x", 3, 5), ("y", 0, 1), ("gap", 7, 9)]) == [("x", [1, 2]), ("y", [0])]


def test_a_step_is_right_only_when_all_its_tokens_are():
    target = torch.tensor([5, 6, 7, 8])
    predicted = torch.tensor([5, 0, 7, 8])
    steps = [("a", [0]), ("b", [1, 2]), ("c", [2, 3]), ("c", [0, 3])]
    assert score_steps(predicted, target, steps) == {"a": (1, 1), "b": (0, 1), "c": (2, 2)}


def test_counts_add_up_over_traces():
    assert merge_counts([{"a": (1, 2)}, {"a": (0, 1), "b": (3, 3)}]) == {"a": (1, 3), "b": (3, 3)}
