"""The embedded default model: a miniature Qwen2.5-Omni thinker with random weights.

Same class as the real model (`Qwen2_5OmniThinkerForConditionalGeneration`: vision encoder, audio
encoder, text decoder with 3-D multimodal RoPE), only small, so forward, backward, generation and
checkpointing run the real code paths on a CPU. Two facts of transformers 5.x shape the config:
RoPE is given as `rope_parameters` (not `rope_scaling`), and `mrope_section` (the temporal,
height and width shares of the rotary frequencies) must sum to head_dim / 2.

Where the embedded default differs from Qwen: `temporal_patch_size` is configurable and params.yaml
sets it to 1. Qwen's 2 stacks each pair of sampled frames into one patch; with only 4 sampled
frames, the tiny encoder then read two flashes inside one pair as a single bright token and
answered 1 for every count_flashes clip whose two flashes fell in different pairs (held-out 0.71,
stuck there through RL). With one frame per token group SFT reaches 0.98 on the same data.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5OmniThinkerConfig

from avatar_core.config import TinyModelConfig


def mrope_sections(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies into (time, height, width), like Qwen's 16/24/24 of 64."""
    if head_dim % 2 or head_dim < 8:
        raise ValueError(f"head_dim must be even and at least 8 for multimodal RoPE, got {head_dim}")
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def tiny_thinker_config(tokenizer: Any, cfg: TinyModelConfig) -> Qwen2_5OmniThinkerConfig:
    """Thinker config for `cfg`, with the special token ids of `tokenizer` (see tokenizer.py)."""
    head_dim = cfg.hidden_size // cfg.num_heads
    vision_heads = 4 if cfg.vision_dim % 4 == 0 else 1
    audio_heads = 4 if cfg.audio_dim % 4 == 0 else 1
    return Qwen2_5OmniThinkerConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": cfg.hidden_size,
            "intermediate_size": 4 * cfg.hidden_size,
            "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads,
            "num_key_value_heads": cfg.num_kv_heads,
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": cfg.rope_theta,
                "mrope_section": mrope_sections(head_dim),
            },
            "tie_word_embeddings": False,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "depth": cfg.vision_depth,
            "hidden_size": cfg.vision_dim,
            "intermediate_size": 2 * cfg.vision_dim,
            "num_heads": vision_heads,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": cfg.temporal_patch_size,
            "out_hidden_size": cfg.hidden_size,
            "fullatt_block_indexes": [cfg.vision_depth - 1],
            "window_size": 112,
            "in_channels": 3,
        },
        audio_config={
            "d_model": cfg.audio_dim,
            "encoder_attention_heads": audio_heads,
            "encoder_ffn_dim": 2 * cfg.audio_dim,
            "encoder_layers": cfg.audio_layers,
            "num_mel_bins": 128,
            "output_dim": cfg.hidden_size,
            "n_window": 100,
            "max_source_positions": 1500,
        },
        audio_token_index=tokenizer.audio_token_id,
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        audio_start_token_id=tokenizer.audio_bos_token_id,
        audio_end_token_id=tokenizer.audio_eos_token_id,
        vision_start_token_id=tokenizer.vision_bos_token_id,
        vision_end_token_id=tokenizer.vision_eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
