"""Tokenizer files of the released Qwen layouts: real special-token ids, released chat templates.

The shrunken checkpoints of `layouts.py` need what a downloaded checkpoint's tokenizer gives the
code: the special tokens at their released ids (151643 and up), the chat template of the family,
and tokenizer_config.json in the released form (no `video_token`-style attributes, which the
released files predate). The ordinary vocabulary is a small byte-level BPE trained on the given
corpus (ids 0..n-1) instead of Qwen's 151,643 merges-built tokens: the ids between the BPE and
the specials are simply unused, as the ids between 151,665 and the 151,936 / 152,064 embedding
rows are unused in the released models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from transformers import Qwen2Tokenizer

from avatar_core.models.tokenizer import _with_scaffold, chatml_tokenizer, train_byte_level_bpe

# (token, special) from id 151643 on, as the released tokenizers number them.
_QWEN2_TAIL = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]
# Qwen2.5-Omni renamed the media tokens in place (same ids) and turned 151646-151648 into audio.
_OMNI_RENAMES = {
    "<|object_ref_start|>": "<|AUDIO|>",
    "<|object_ref_end|>": "<|audio_bos|>",
    "<|box_start|>": "<|audio_eos|>",
    "<|vision_start|>": "<|vision_bos|>",
    "<|vision_end|>": "<|vision_eos|>",
    "<|image_pad|>": "<|IMAGE|>",
    "<|video_pad|>": "<|VIDEO|>",
}
# Qwen3 kept Qwen2's ids and appended thinking, audio and speech tokens.
_QWEN3_OMNI_EXTRA = [
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
    ("<|audio_start|>", True),
    ("<|audio_end|>", True),
    ("<tts_pad>", True),
    ("<tts_text_bos>", True),
    ("<tts_text_eod>", True),
    ("<tts_text_bos_single>", True),
    ("<|audio_pad|>", True),
]
FIRST_SPECIAL_ID = 151643


def special_tokens(family: str) -> list[tuple[int, str, bool]]:
    """(id, token, special) of a family: qwen2 (VL and text models), qwen2_5_omni, qwen3_omni."""
    if family == "qwen2":
        tail = _QWEN2_TAIL
    elif family == "qwen2_5_omni":
        tail = [(_OMNI_RENAMES.get(t, t), s) for t, s in _QWEN2_TAIL]
    elif family == "qwen3_omni":
        tail = _QWEN2_TAIL + _QWEN3_OMNI_EXTRA
    else:
        raise ValueError(f"unknown tokenizer family {family!r}; valid: qwen2, qwen2_5_omni, qwen3_omni")
    return [(FIRST_SPECIAL_ID + i, t, s) for i, (t, s) in enumerate(tail)]


def _media_template(vision_start: str, vision_end: str, image: str, video: str, audio: str | None) -> str:
    audio_branch = (
        "{% elif content['type'] == 'audio' or 'audio' in content %}" + audio if audio is not None else ""
    )
    return (
        "{% for content in message['content'] %}"
        "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
        f"{vision_start}{image}{vision_end}"
        f"{audio_branch}"
        "{% elif content['type'] == 'video' or 'video' in content %}"
        f"{vision_start}{video}{vision_end}"
        "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}"
    )


def _multimodal_template(default_system: str | None, media: str) -> str:
    system = (
        "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
        f"{default_system}<|im_end|>\n{{% endif %}}"
        if default_system
        else ""
    )
    return (
        "{% for message in messages %}" + system + "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
        "{% else %}" + media + "<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


VL_CHAT_TEMPLATE = _multimodal_template(
    "You are a helpful assistant.",
    _media_template("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", None),
)
OMNI_CHAT_TEMPLATE = _multimodal_template(
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
    "perceiving auditory and visual inputs, as well as generating text and speech.",
    _media_template(
        "<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|audio_bos|><|AUDIO|><|audio_eos|>"
    ),
)
QWEN3_OMNI_CHAT_TEMPLATE = _multimodal_template(
    None,
    _media_template(
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
        "<|audio_start|><|audio_pad|><|audio_end|>",
    ),
)
# Qwen2.5-Instruct's template (tool branch left out): message content is concatenated as a
# string, so a list of content parts fails in it exactly as in the released file.
TEXT_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def write_tokenizer(
    folder: Path,
    corpus: Iterable[str],
    family: str,
    chat_template: str,
    *,
    bpe_size: int = 512,
    template_in_tokenizer_config: bool = True,
) -> Qwen2Tokenizer:
    """Write vocab.json, merges.txt, tokenizer.json and a released-style tokenizer_config.json.

    With `template_in_tokenizer_config` False the chat template goes to chat_template.json
    only, as multimodal repositories ship it for their processor.
    """
    # the ordinary vocabulary only: the specials go to their released ids below
    bpe_vocab, merges = train_byte_level_bpe(_with_scaffold(corpus), bpe_size, [])
    specials = special_tokens(family)
    vocab = dict(bpe_vocab)
    vocab.update({token: i for i, token, _ in specials})
    # released tokenizers pad on the right; their specials sit in the vocabulary at released ids
    tokenizer = chatml_tokenizer(vocab, merges, [], chat_template, padding_side="right")
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(bpe_vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {
                "content": token,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": special,
            }
            for i, token, special in specials
        },
        "additional_special_tokens": [t for _, t, s in specials if s and t != "<|endoftext|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    if template_in_tokenizer_config:
        config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    for stale in ("chat_template.jinja", "special_tokens_map.json"):
        (folder / stale).unlink(missing_ok=True)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": chat_template}, indent=2))
    return tokenizer
