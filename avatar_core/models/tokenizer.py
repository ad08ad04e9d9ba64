"""A byte-level BPE tokenizer trained locally and wrapped as a Qwen2 tokenizer.

The embedded default cannot download Qwen's 151k-token vocabulary, so `train_tokenizer` learns a
small byte-level BPE (same pre-tokenisation regex as Qwen2) on the task corpus with the
`tokenizers` library and wraps it in `transformers.Qwen2Tokenizer` with the Qwen2.5-Omni special
tokens and a chat template. The special token *strings* and the chat layout match Qwen2.5-Omni,
so the processor and model code paths are the real ones; only the ids differ (specials take the
first ids here). The template emits `<|vision_bos|><|VIDEO|><|vision_eos|>` for a video item; the
Omni processor expands it (and inserts audio markers when audio travels in the video).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, Qwen2Tokenizer

QWEN_SPECIAL_TOKENS: list[str] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
]

# Qwen2's pre-tokenisation: contractions, letter runs, single digits, punctuation, whitespace.
QWEN_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif c['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif c['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Words every prompt and completion uses, so that even a tiny vocabulary gives them short codes.
_SCAFFOLD_TEXT = (
    "system\nuser\nassistant\n<think> </think> <answer> </answer> Hint: "
    "You are a helpful assistant that can see and hear. Think about the question inside "
    "<think></think> tags, then give the final answer inside <answer></answer> tags. "
    "Answer with the option letter. Answer with a number. A. B. C. D. E. 0 1 2 3 4 5 6 7 8 9"
)


def _with_scaffold(corpus: Iterable[str]) -> Iterator[str]:
    for _ in range(20):
        yield _SCAFFOLD_TEXT
    yield from corpus


def train_byte_level_bpe(
    corpus: Iterable[str], vocab_size: int, special_tokens: list[str]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of a byte-level BPE with Qwen2's pre-tokenisation; specials take the first ids."""
    minimum = 256 + len(special_tokens)
    if vocab_size < minimum:
        raise ValueError(f"vocab_size {vocab_size} is too small: a byte-level BPE needs at least {minimum}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    model_state = json.loads(bpe.to_str())["model"]
    # Qwen2Tokenizer wants merges as (left, right) tuples; `tokenizers` may serialise "a b" strings.
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_state["merges"]]
    return model_state["vocab"], merges


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE of `vocab_size` entries (specials included) and wrap it as Qwen2.

    The vocabulary always holds the 256 byte symbols and the 14 Qwen specials, so any text
    round-trips; `vocab_size` must leave room for them. Padding is on the left (generation).
    """
    vocab, merges = train_byte_level_bpe(_with_scaffold(corpus), vocab_size, QWEN_SPECIAL_TOKENS)
    return chatml_tokenizer(
        vocab,
        merges,
        QWEN_SPECIAL_TOKENS,
        CHAT_TEMPLATE,
        image_token="<|IMAGE|>",
        video_token="<|VIDEO|>",
        audio_token="<|AUDIO|>",
        vision_bos_token="<|vision_bos|>",
        vision_eos_token="<|vision_eos|>",
        audio_bos_token="<|audio_bos|>",
        audio_eos_token="<|audio_eos|>",
    )


def chatml_tokenizer(
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    specials: list[str],
    chat_template: str,
    padding_side: str = "left",
    **named_tokens: str,
) -> Qwen2Tokenizer:
    """A trained BPE wrapped as transformers' Qwen2Tokenizer the way ChatML models ship it: ends
    on <|im_end|>, pads with <|endoftext|> (on the left by default: generation), no unknown token,
    `specials` registered as special tokens, and the model's own named tokens (image, video,
    audio...)."""
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=chat_template,
        padding_side=padding_side,
        **named_tokens,
    )
    if specials:
        tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
    return tokenizer
