"""Format, accuracy and self-consistency rewards: hand-worked cases and plain references."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.rewards.functions import accuracy_reward, format_reward, numeric_score, self_reward

CHOICES = ["cat", "dog", "bird", "fish"]


def done(answer: str, think: str = "reasoning") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def test_format_reward_hand_worked() -> None:
    completions = [
        done("B"),
        "  <think>a</think>\n<answer>B</answer>  ",
        "Here: " + done("B"),
        done("B") + " Hope this helps",
        "<think>a</think><think>b</think><answer>B</answer>",
        "<think>a<think>b</think></think><answer>B</answer>",
        "<answer>B</answer>",
        "B",
    ]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_format_reward_ignores_unknown_columns_and_accepts_chat_messages() -> None:
    chat = [[{"role": "assistant", "content": done("A")}]]
    assert format_reward(chat, prompts=["p"], completion_ids=[[1, 2]], trainer_state=None) == [1.0]


def mc(completions: list[str], answers: list[str]) -> list[float | None]:
    n = len(completions)
    return accuracy_reward(completions, answer=answers, answer_type=["mc"] * n, choices=[CHOICES] * n)


def test_accuracy_multiple_choice_hand_worked() -> None:
    completions = [
        done("B"),
        done("b"),
        done("(B) dog"),
        done("Dog"),
        done("C"),
        done("B. cat"),
        "B",
        done(""),
    ]
    assert mc(completions, ["B"] * 8) == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_accuracy_ground_truth_letter_is_case_and_space_insensitive() -> None:
    assert mc([done("B"), done("b")], [" b ", "B"]) == [1.0, 1.0]


def numeric(completions: list[str], answers: list[str], **options: object) -> list[float | None]:
    n = len(completions)
    return accuracy_reward(
        completions, answer=answers, answer_type=["numeric"] * n, choices=[[]] * n, **options
    )


def test_accuracy_numeric_dense_hand_worked() -> None:
    completions = [done("4"), done("3"), done("6"), done("9"), done("four beeps"), done("-4"), done("x"), "4"]
    # gt 4: |3-4|/4 = 0.25 -> 0.75; |6-4|/4 = 0.5 -> 0.5; |9-4|/4 > 1 -> 0; -4: error 2 -> 0
    assert numeric(completions, ["4"] * 8) == [1.0, 0.75, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_accuracy_numeric_negative_and_zero_ground_truth() -> None:
    assert numeric([done("-2"), done("-3"), done("2")], ["-2", "-2", "-2"]) == [1.0, 0.5, 0.0]
    # gt = 0: the denominator is 1e-6, so anything but 0 is a full miss
    assert numeric([done("0"), done("zero"), done("0.000001"), done("1")], ["0"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_accuracy_numeric_binary_authors_rule() -> None:
    completions = [done("100"), done("100.05"), done("100.2"), done("99"), done("none")]
    assert numeric(completions, ["100"] * 5, numeric_mode="binary") == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert numeric([done("99")], ["100"], numeric_mode="binary", numeric_tol=0.02) == [1.0]


def test_accuracy_mixes_answer_types_in_one_call() -> None:
    rewards = accuracy_reward(
        [done("A"), done("2")],
        answer=["A", "4"],
        answer_type=["mc", "numeric"],
        choices=[CHOICES, []],
        video=["a.mp4", "b.mp4"],
    )
    assert rewards == [1.0, 0.5]


def test_accuracy_bad_inputs_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"answer_type\[0\] must be 'mc', 'numeric' or 'multi', got 'open'"):
        accuracy_reward([done("A")], answer=["A"], answer_type=["open"], choices=[CHOICES])
    with pytest.raises(ValueError, match=r"answer\[0\] is not a number: 'four'"):
        numeric([done("4")], ["four"])
    with pytest.raises(ValueError, match="column 'answer' has 1 values for 2 completions"):
        mc([done("A"), done("B")], ["A"])
    with pytest.raises(ValueError, match="numeric_mode must be 'dense' or 'binary', got 'soft'"):
        numeric([done("4")], ["4"], numeric_mode="soft")


@settings(max_examples=200, deadline=None)
@given(
    predicted=st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-50, 50).map(float),
    truth=st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-50, 50).map(float),
)
def test_accuracy_numeric_matches_reference(predicted: float, truth: float) -> None:
    relative = abs(predicted - truth) / max(abs(truth), 1e-6)
    dense = numeric([done(repr(predicted))] * 2, [repr(truth)] * 2, numeric_mode="dense")
    binary = numeric([done(repr(predicted))], [repr(truth)], numeric_mode="binary")
    assert dense == [pytest.approx(1.0 - min(relative, 1.0))] * 2
    assert binary == [1.0 if relative < 1e-3 else 0.0]
    assert 0.0 <= numeric_score(predicted, truth) <= 1.0


def self_rewards(answers: list[str], ids: list[str], answer_type: str = "mc") -> list[float | None]:
    n = len(answers)
    choices = [CHOICES if answer_type == "mc" else []] * n
    return self_reward([done(a) for a in answers], id=ids, answer_type=[answer_type] * n, choices=choices)


def test_self_reward_majority_hand_worked() -> None:
    # A, a, (A) cat vote A three times; B once; C once: label A
    assert self_rewards(["A", "a", "(A) cat", "B", "C"], ["p"] * 5) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_self_reward_tie_gives_no_label() -> None:
    assert self_rewards(["A", "B", "A", "B"], ["p"] * 4) == [0.0, 0.0, 0.0, 0.0]


def test_self_reward_empty_and_unparsable_answers_never_vote() -> None:
    # three unparsable ('', 'horse', 'E') would outvote a real answer if they voted as one bloc
    assert self_rewards(["", "horse", "E", "B"], ["p"] * 4) == [0.0, 0.0, 0.0, 1.0]
    assert self_rewards(["", "horse"], ["p", "p"]) == [0.0, 0.0]
    malformed = self_reward(
        ["no tags", "<answer>B</answer><answer>C</answer>", done("C")],
        id=["p"] * 3,
        answer_type=["mc"] * 3,
        choices=[CHOICES] * 3,
    )
    assert malformed == [0.0, 0.0, 1.0]


def test_self_reward_groups_by_prompt_id_in_one_call() -> None:
    answers = ["A", "B", "C", "B", "D", "D", "A", "C"]
    ids = ["p", "q", "p", "q", "r", "r", "p", "r"]
    # p: A, C, A -> A; q: B, B -> B; r: D, D, C -> D
    assert self_rewards(answers, ids) == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_self_reward_numeric_votes_by_value() -> None:
    assert self_rewards(["3", "3.0", "three", "4", "x"], ["p"] * 5, "numeric") == [1.0, 1.0, 1.0, 0.0, 0.0]


def reference_self_reward(keys: list[str | None], ids: list[str]) -> list[float]:
    """Majority vote written the long way: count, find the top, refuse ties."""
    labels: dict[str, str | None] = {}
    for prompt in set(ids):
        counts: dict[str, int] = {}
        for key, owner in zip(keys, ids, strict=True):
            if owner == prompt and key is not None:
                counts[key] = counts.get(key, 0) + 1
        top = max(counts.values(), default=0)
        winners = [k for k, c in counts.items() if c == top]
        labels[prompt] = winners[0] if top > 0 and len(winners) == 1 else None
    return [1.0 if key is not None and key == labels[p] else 0.0 for key, p in zip(keys, ids, strict=True)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "b", "(C)", "dog", "", "zebra", "Z"]), st.sampled_from(["p", "q", "r"])
        ),
        min_size=1,
        max_size=24,
    )
)
def test_self_reward_matches_reference(rows: list[tuple[str, str]]) -> None:
    answers = [a for a, _ in rows]
    ids = [i for _, i in rows]
    canonical = {"A": "A", "b": "B", "(C)": "C", "dog": "B", "": None, "zebra": None, "Z": None}
    assert self_rewards(answers, ids) == reference_self_reward([canonical[a] for a in answers], ids)


def test_self_reward_bad_input_names_the_column() -> None:
    with pytest.raises(ValueError, match="reward 'self': column 'id' has 1 values for 2 completions"):
        self_reward([done("A"), done("B")], id=["p"], answer_type=["mc"] * 2, choices=[CHOICES] * 2)
