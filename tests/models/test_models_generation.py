"""Prompt encoding, rollouts and teacher forcing: behaviour log-probs equal the training pass."""

from __future__ import annotations

import pytest
import torch
from models_helpers import make_clip, video_messages

from avatar_core.data.schema import Sample, render_messages
from avatar_core.models.generation import (
    _completion_mask,
    completion_hidden_states,
    completion_logprobs,
    generate_rollouts,
)
from avatar_core.models.inputs import encode_prompts, select_rows


@pytest.fixture(scope="module")
def prompts(tiny_bundle):
    """Three prompts: video with audio, text only, and a shorter clip with another frame count."""
    messages = [
        video_messages(),
        video_messages("Count the flashes.", with_video=False),
        video_messages("Where?"),
    ]
    clips = [make_clip(n_frames=4, seed=0), None, make_clip(n_frames=6, seconds=1.5, seed=2)]
    return encode_prompts(tiny_bundle, messages, clips)


def test_hint_in_a_system_message_is_in_the_encoded_prompt(tiny_bundle) -> None:
    sample = Sample(
        id="q1",
        task="count_beeps",
        question="How many beeps?",
        answer="3",
        answer_type="numeric",
        video="clip.mp4",
        hint="first listen for the beeps, then count them",
    )
    batch = encode_prompts(tiny_bundle, [render_messages(sample, hint=sample.hint)], [make_clip()])
    text = tiny_bundle.tokenizer.decode(batch["input_ids"][0])
    assert "<|im_start|>system\nHint: first listen for the beeps, then count them<|im_end|>" in text
    plain = tiny_bundle.tokenizer.decode(
        encode_prompts(tiny_bundle, [render_messages(sample)], [make_clip()])["input_ids"][0]
    )
    assert "Hint:" not in plain


def test_batch_is_left_padded(tiny_bundle, prompts) -> None:
    mask = prompts["attention_mask"]
    assert mask[:, -1].all()
    assert not mask[1, 0]  # the text-only prompt is the shortest
    first_real = int((mask[1] == 0).sum())
    assert tiny_bundle.tokenizer.decode(prompts["input_ids"][1, first_real:]).startswith("<|im_start|>system")


def test_select_rows_repeats_media_consistently(tiny_bundle, prompts) -> None:
    index = [2, 0, 2, 1]
    picked = select_rows(tiny_bundle, prompts, index)
    grids = prompts["video_grid_thw"].tolist()  # prompt 0 -> video 0, prompt 2 -> video 1, prompt 1: none
    assert picked["video_grid_thw"].tolist() == [grids[1], grids[0], grids[1]]
    assert picked["input_features"].shape[0] == 3
    with torch.no_grad():
        full = tiny_bundle.model(**prompts).logits
        rows = tiny_bundle.model(**picked).logits
    for k, i in enumerate(index):
        torch.testing.assert_close(rows[k], full[i], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("where", "messages", "clip", "message"),
    [
        (
            "video item",
            video_messages(),
            None,
            "prompt 0: the messages hold a video item but no clip was given",
        ),
        (
            "no item",
            video_messages(with_video=False),
            make_clip(),
            "prompt 0: a clip was given but the messages hold no video item",
        ),
    ],
)
def test_media_mismatch_is_named(tiny_bundle, where, messages, clip, message) -> None:
    with pytest.raises(ValueError, match=message):
        encode_prompts(tiny_bundle, [messages], [clip])


def test_prompt_and_clip_counts_must_agree(tiny_bundle) -> None:
    with pytest.raises(ValueError, match="2 message lists but 1 clips"):
        encode_prompts(tiny_bundle, [video_messages(), video_messages()], [make_clip()])


def test_completion_mask_hand_worked() -> None:
    tokens = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 9, 2, 0]])
    expected = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    assert torch.equal(_completion_mask(tokens, eos_id=2), expected)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"temperature": 0.7, "top_k": 5},
        {"temperature": 1.3, "top_p": 0.5},
        {"greedy": True, "temperature": 0.9},
    ],
)
def test_behaviour_logprobs_equal_teacher_forced(tiny_bundle, prompts, options) -> None:
    rollouts = generate_rollouts(tiny_bundle, prompts, group_size=3, max_new_tokens=12, seed=7, **options)
    n, length = rollouts.completion_ids.shape
    assert n == 9 and 1 <= length <= 12
    assert rollouts.prompt_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert rollouts.behaviour_logp.dtype == torch.float32
    assert (rollouts.behaviour_logp[rollouts.completion_mask == 0] == 0).all()
    assert (rollouts.behaviour_logp[rollouts.completion_mask == 1] < 0).all()
    teacher = completion_logprobs(
        tiny_bundle,
        prompts,
        rollouts.completion_ids,
        rollouts.completion_mask,
        rollouts.prompt_index,
        temperature=options.get("temperature", 1.0),
    )
    assert (teacher - rollouts.behaviour_logp).abs().max().item() < 1e-4


def test_top_k_restricts_samples_and_seed_reproduces(tiny_bundle, prompts) -> None:
    first = generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8, top_k=3, seed=11)
    again = generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8, top_k=3, seed=11)
    assert torch.equal(first.completion_ids, again.completion_ids)
    assert first.texts == again.texts
    # Rank of each sampled token under the full distribution (teacher forced) is below k.
    ids, mask = first.completion_ids, first.completion_mask
    with torch.no_grad():
        logits = tiny_bundle.lm_head()(
            completion_hidden_states(tiny_bundle, prompts, ids, mask, first.prompt_index)
        )
    rank = (logits > logits.gather(-1, ids[..., None])).sum(-1)  # [N, L]
    assert rank[mask == 1].max().item() < 3


def test_unseeded_calls_draw_fresh_samples_and_a_seed_leaves_the_global_stream(tiny_bundle, prompts) -> None:
    """Without a seed, sampling advances the global stream: two calls on the same policy and prompts
    draw different completions (an RL run must not redraw the same numbers every step), and the
    stream is reproducible from torch.manual_seed. A seeded call does not move the global stream."""
    torch.manual_seed(5)
    first = generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8)
    second = generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8)
    assert not torch.equal(first.completion_ids, second.completion_ids)
    torch.manual_seed(5)
    assert torch.equal(
        generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8).completion_ids,
        first.completion_ids,
    )
    state = torch.get_rng_state()
    generate_rollouts(tiny_bundle, prompts, group_size=4, max_new_tokens=8, seed=11)
    assert torch.equal(torch.get_rng_state(), state)


def test_top_k_one_is_greedy(tiny_bundle, prompts) -> None:
    greedy = generate_rollouts(tiny_bundle, prompts, group_size=1, max_new_tokens=8, greedy=True)
    top1 = generate_rollouts(tiny_bundle, prompts, group_size=1, max_new_tokens=8, top_k=1, seed=3)
    assert torch.equal(greedy.completion_ids, top1.completion_ids)


def test_media_tokens_are_never_sampled(tiny_bundle, prompts) -> None:
    rollouts = generate_rollouts(
        tiny_bundle, prompts, group_size=4, max_new_tokens=16, temperature=3.0, seed=5
    )
    tok = tiny_bundle.tokenizer
    banned = {
        tok.convert_tokens_to_ids(t)
        for t in ("<|AUDIO|>", "<|VIDEO|>", "<|IMAGE|>", "<|vision_bos|>", "<|audio_bos|>")
    }
    assert not banned & set(rollouts.completion_ids.flatten().tolist())


def test_bad_sampling_arguments_are_named(tiny_bundle, prompts) -> None:
    with pytest.raises(ValueError, match="group_size and max_new_tokens must be >= 1, got 0 and 4"):
        generate_rollouts(tiny_bundle, prompts, group_size=0, max_new_tokens=4)
    with pytest.raises(ValueError, match="got 0.0, 1.0, 0"):
        generate_rollouts(tiny_bundle, prompts, group_size=1, max_new_tokens=4, temperature=0.0)
