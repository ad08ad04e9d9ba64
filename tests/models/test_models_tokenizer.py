"""The locally trained Qwen2 tokenizer: round trip, special tokens, chat template, save/load."""

from __future__ import annotations

import pytest
from models_helpers import CORPUS
from transformers import AutoTokenizer, Qwen2Tokenizer

from avatar_core.models.tokenizer import QWEN_SPECIAL_TOKENS, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS, 600)


def test_text_round_trips_including_unseen_characters(tokenizer) -> None:
    text = "How many beeps? <think>3 beeps, then ünïcödé 😀 and\ttabs\n</think><answer>B</answer>"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_special_tokens_are_single_ids_in_order(tokenizer) -> None:
    assert isinstance(tokenizer, Qwen2Tokenizer)
    # The trainer puts the specials first, in the listed order.
    for expected_id, token in enumerate(QWEN_SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == expected_id
        assert tokenizer(token)["input_ids"] == [expected_id]
    assert tokenizer.pad_token_id == 0  # <|endoftext|>
    assert tokenizer.eos_token_id == 2  # <|im_end|>
    assert (tokenizer.audio_token_id, tokenizer.video_token_id, tokenizer.image_token_id) == (3, 13, 12)
    assert tokenizer.padding_side == "left"


def test_chat_template_places_media_markers(tokenizer) -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"type": "audio"},
                {"type": "image"},
                {"type": "text", "text": "Q?"},
            ],
        },
        {"role": "assistant", "content": "A"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nsys<|im_end|>\n"
        "<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>"
        "<|vision_bos|><|IMAGE|><|vision_eos|>Q?<|im_end|>\n"
        "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n"
    )


def test_special_tokens_stripped_when_decoding(tokenizer) -> None:
    ids = tokenizer("<|im_start|>assistant\n<think>x</think><|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\n<think>x</think>"


def test_save_and_reload_gives_same_ids(tokenizer, tmp_path) -> None:
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|>How many beeps?<|im_end|>"
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert again.video_token_id == tokenizer.video_token_id
    assert again.padding_side == "left"


def test_vocabulary_is_capped_and_too_small_is_rejected() -> None:
    assert len(train_tokenizer(CORPUS * 5, 300)) <= 300
    with pytest.raises(ValueError, match="vocab_size 100 is too small"):
        train_tokenizer(CORPUS, 100)
