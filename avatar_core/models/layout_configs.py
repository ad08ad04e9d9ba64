"""The released Qwen layouts as data: sizes, vocabulary, and config.json in both forms.

`LAYOUTS` names each repository this package is tested against, with the real sizes of its
trainable part; `layout_config` writes the config.json the repository ships, either in the
legacy form (transformers 4.5x: `rope_scaling` with `type`/`mrope_section`, `torch_dtype`,
Qwen2.5-VL's text fields at the top level with a vision `model_type` of `qwen2_5_vl`) or in the
form transformers 5 saves. Token ids are the released ones. `layouts.py` writes the folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class Layout:
    name: str
    repo: str  # the hub repository whose layout this is
    kind: str
    family: str  # qwen2_5_omni | qwen3_omni | qwen2_5_vl | qwen2
    vocab_size: int
    released: dict[str, int]  # text/vision/audio sizes of the real model
    tie_word_embeddings: bool = False


_TINY = {
    "hidden": 32,
    "layers": 2,
    "heads": 2,
    "kv_heads": 1,
    "head_dim": 16,
    "intermediate": 64,
    "experts": 4,
    "experts_per_tok": 2,
    "moe_intermediate": 16,
    "vision_hidden": 16,
    "vision_depth": 2,
    "vision_heads": 2,
    "vision_intermediate": 32,
    "audio_hidden": 16,
    "audio_layers": 2,
    "audio_heads": 2,
    "audio_ffn": 32,
}
_OMNI_ENCODERS = {
    "vision_hidden": 1280,
    "vision_depth": 32,
    "vision_heads": 16,
    "vision_intermediate": 3420,
    "audio_hidden": 1280,
    "audio_layers": 32,
    "audio_heads": 20,
    "audio_ffn": 5120,
}
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "qwen2_5_omni_7b",
            "Qwen/Qwen2.5-Omni-7B",
            "qwen2_5_omni",
            "qwen2_5_omni",
            152064,
            {
                "hidden": 3584,
                "layers": 28,
                "heads": 28,
                "kv_heads": 4,
                "intermediate": 18944,
                **_OMNI_ENCODERS,
            },
        ),
        Layout(
            "qwen2_5_omni_3b",
            "Qwen/Qwen2.5-Omni-3B",
            "qwen2_5_omni",
            "qwen2_5_omni",
            151936,
            {
                "hidden": 2048,
                "layers": 36,
                "heads": 16,
                "kv_heads": 2,
                "intermediate": 11008,
                **_OMNI_ENCODERS,
            },
        ),
        Layout(
            "qwen3_omni_30b_a3b",
            "Qwen/Qwen3-Omni-30B-A3B-Instruct",
            "qwen3_omni_moe",
            "qwen3_omni",
            152064,
            {
                "hidden": 2048,
                "layers": 48,
                "heads": 32,
                "kv_heads": 4,
                "head_dim": 128,
                "intermediate": 768,
                "experts": 128,
                "experts_per_tok": 8,
                "moe_intermediate": 768,
                "vision_hidden": 1152,
                "vision_depth": 27,
                "vision_heads": 16,
                "vision_intermediate": 4304,
                "audio_hidden": 1280,
                "audio_layers": 32,
                "audio_heads": 20,
                "audio_ffn": 5120,
            },
        ),
        Layout(
            "qwen2_5_vl_3b",
            "Qwen/Qwen2.5-VL-3B-Instruct",
            "qwen2_5_vl",
            "qwen2_5_vl",
            151936,
            {
                "hidden": 2048,
                "layers": 36,
                "heads": 16,
                "kv_heads": 2,
                "intermediate": 11008,
                "vision_hidden": 1280,
                "vision_depth": 32,
                "vision_heads": 16,
                "vision_intermediate": 3420,
            },
            tie_word_embeddings=True,
        ),
        Layout(
            "qwen2_5_0_5b_instruct",
            "Qwen/Qwen2.5-0.5B-Instruct",
            "causal_lm",
            "qwen2",
            151936,
            {"hidden": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate": 4864},
            tie_word_embeddings=True,
        ),
    )
}


def dims_of(layout: Layout, dims: str | dict[str, int]) -> dict[str, int]:
    """Sizes to build: "tiny" (seconds on a CPU), "released" (the real model), or a dict of
    sizes overriding the tiny ones (hidden, layers, heads, kv_heads, head_dim, intermediate, ...)."""
    if isinstance(dims, dict):
        unknown = set(dims) - set(_TINY)
        if unknown:
            raise ValueError(f"unknown layout sizes {sorted(unknown)}; valid: {', '.join(_TINY)}")
        d = {**_TINY, **dims}
        if "head_dim" not in dims:
            d["head_dim"] = d["hidden"] // d["heads"]
        return d
    if dims == "tiny":
        return dict(_TINY)
    if dims == "released":
        d = {**_TINY, **layout.released}
        if "head_dim" not in layout.released:
            d["head_dim"] = d["hidden"] // d["heads"]
        return d
    raise ValueError(f"dims must be 'tiny', 'released' or a dict of sizes, got {dims!r}")


def _mrope(head_dim: int) -> list[int]:
    """Qwen's 16/24/24 split of 64 rotary frequencies, scaled to head_dim / 2."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


# --------------------------------------------------------------------------- config.json


def _text_fields(layout: Layout, d: dict[str, int], legacy: bool, mrope: list[int] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "vocab_size": layout.vocab_size,
        "hidden_size": d["hidden"],
        "intermediate_size": d["intermediate"],
        "num_hidden_layers": d["layers"],
        "num_attention_heads": d["heads"],
        "num_key_value_heads": d["kv_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": d["layers"],
        "attention_dropout": 0.0,
        "tie_word_embeddings": layout.tie_word_embeddings,
        "initializer_range": 0.02,
        "use_cache": True,
    }
    rope: dict[str, Any] = {"rope_type": "default"}
    if mrope is not None:
        rope["mrope_section"] = mrope
    if legacy:
        fields["rope_theta"] = 1000000.0
        if mrope is not None:
            # Qwen2.5-VL shipped {"type": "mrope"}; the Omni models {"type": "default", "rope_type": ...}.
            if layout.family == "qwen2_5_vl":
                fields["rope_scaling"] = {"type": "mrope", "mrope_section": mrope}
            else:
                fields["rope_scaling"] = {"type": "default", **rope}
        fields["torch_dtype"] = "bfloat16"
    else:
        fields["rope_parameters"] = {**rope, "rope_theta": 1000000.0}
    return fields


def _omni_thinker(layout: Layout, d: dict[str, int], legacy: bool) -> dict[str, Any]:
    text = _text_fields(layout, d, legacy, _mrope(d["hidden"] // d["heads"]))
    text["model_type"] = "qwen2_5_omni_text"
    return {
        "model_type": "qwen2_5_omni_thinker",
        "architectures": ["Qwen2OmniNaViTThinkerForConditionalGeneration"],
        "audio_token_index": 151646,
        "audio_start_token_id": 151647,
        "audio_end_token_id": 151648,
        "image_token_index": 151655,
        "video_token_index": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_token_id": 151654,
        "bos_token_id": 151644,
        "eos_token_id": 151645,
        "pad_token_id": 151643,
        "user_token_id": 872,
        "position_id_per_seconds": 25,
        "seconds_per_chunk": 2,
        "ignore_index": -100,
        "init_std": 0.02,
        "text_config": text,
        "vision_config": {
            "model_type": "qwen2_5_omni_vision_encoder",
            "depth": d["vision_depth"],
            "embed_dim": d["vision_hidden"],
            "hidden_size": d["vision_hidden"],
            "hidden_act": "silu",
            "intermediate_size": d["vision_intermediate"],
            "num_heads": d["vision_heads"],
            "in_channels": 3,
            "in_chans": 3,
            "patch_size": 14,
            "spatial_patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "tokens_per_second": 25,
            "out_hidden_size": d["hidden"],
            "fullatt_block_indexes": [d["vision_depth"] - 1],
        },
        "audio_config": {
            "model_type": "qwen2_5_omni_audio_encoder",
            "d_model": d["audio_hidden"],
            "encoder_layers": d["audio_layers"],
            "num_hidden_layers": d["audio_layers"],
            "encoder_attention_heads": d["audio_heads"],
            "encoder_ffn_dim": d["audio_ffn"],
            "num_mel_bins": 128,
            "max_source_positions": 1500,
            "n_window": 100,
            "output_dim": d["hidden"],
            "activation_function": "gelu",
            "scale_embedding": False,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
        },
        **({"torch_dtype": "bfloat16"} if legacy else {"dtype": "bfloat16"}),
    }


def _qwen3_thinker(layout: Layout, d: dict[str, int], legacy: bool) -> dict[str, Any]:
    text = _text_fields(layout, d, legacy, _mrope(d["head_dim"]))
    rope_key = "rope_scaling" if legacy else "rope_parameters"
    text[rope_key]["interleaved"] = True
    text[rope_key]["mrope_interleaved"] = True
    text.update(
        model_type="qwen3_omni_moe_text",
        head_dim=d["head_dim"],
        num_experts=d["experts"],
        num_experts_per_tok=d["experts_per_tok"],
        moe_intermediate_size=d["moe_intermediate"],
        decoder_sparse_step=1,
        norm_topk_prob=True,
        mlp_only_layers=[],
        router_aux_loss_coef=0.001,
        sliding_window=None,
    )
    return {
        "model_type": "qwen3_omni_moe_thinker",
        "audio_token_id": 151675,
        "audio_start_token_id": 151669,
        "audio_end_token_id": 151670,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "position_id_per_seconds": 13,
        "seconds_per_chunk": 2,
        "user_token_id": 872,
        "initializer_range": 0.02,
        "text_config": text,
        "vision_config": {
            "model_type": "qwen3_omni_moe_vision_encoder",
            "depth": d["vision_depth"],
            "hidden_size": d["vision_hidden"],
            "hidden_act": "gelu_pytorch_tanh",
            "intermediate_size": d["vision_intermediate"],
            "num_heads": d["vision_heads"],
            "in_channels": 3,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": d["hidden"],
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": list(range(min(3, d["vision_depth"])))
            if d["vision_depth"] < 27
            else [8, 16, 24],
            "initializer_range": 0.02,
        },
        "audio_config": {
            "model_type": "qwen3_omni_moe_audio_encoder",
            "d_model": d["audio_hidden"],
            "encoder_layers": d["audio_layers"],
            "encoder_attention_heads": d["audio_heads"],
            "encoder_ffn_dim": d["audio_ffn"],
            "num_mel_bins": 128,
            "max_source_positions": 1500,
            "n_window": 50,
            "n_window_infer": 800,
            "conv_chunksize": 500,
            "downsample_hidden_size": 8 if d["audio_hidden"] < 1280 else 480,
            "output_dim": d["hidden"],
            "activation_function": "gelu",
        },
    }


def layout_config(layout: Layout, d: dict[str, int], legacy: bool) -> dict[str, Any]:
    """config.json of the layout, in the released (legacy) or transformers 5 form."""
    dtype = {"torch_dtype": "bfloat16"} if legacy else {"dtype": "bfloat16"}
    if layout.family == "qwen2_5_omni":
        return {
            "architectures": ["Qwen2_5OmniModel"],
            "model_type": "qwen2_5_omni",
            "enable_audio_output": True,
            "enable_talker": True,
            "thinker_config": _omni_thinker(layout, d, legacy),
            "talker_config": {"model_type": "qwen2_5_omni_talker", "vocab_size": 8448, "hidden_size": 896},
            "token2wav_config": {"model_type": "qwen2_5_omni_token2wav"},
            **dtype,
        }
    if layout.family == "qwen3_omni":
        return {
            "architectures": ["Qwen3OmniMoeForConditionalGeneration"],
            "model_type": "qwen3_omni_moe",
            "enable_audio_output": True,
            "im_start_token_id": 151644,
            "im_end_token_id": 151645,
            "thinker_config": _qwen3_thinker(layout, d, legacy),
            "talker_config": {"model_type": "qwen3_omni_moe_talker"},
            "code2wav_config": {"model_type": "qwen3_omni_moe_code2wav"},
            **dtype,
        }
    text = _text_fields(
        layout, d, legacy, _mrope(d["hidden"] // d["heads"]) if layout.kind != "causal_lm" else None
    )
    ids = {"bos_token_id": 151643, "eos_token_id": 151645}
    if layout.family == "qwen2":
        return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **text, **ids}
    vision = {
        "depth": d["vision_depth"],
        "hidden_size": d["vision_hidden"],
        "hidden_act": "silu",
        "intermediate_size": d["vision_intermediate"],
        "num_heads": d["vision_heads"],
        "in_chans": 3,
        "out_hidden_size": d["hidden"],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [d["vision_depth"] - 1],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
        "model_type": "qwen2_5_vl" if legacy else "qwen2_5_vl_vision",
    }
    media_ids = {
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_token_id": 151654,
        "image_token_id": 151655,
        "video_token_id": 151656,
    }
    head = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl"}
    if legacy:  # text fields at the top level, as the released config.json has them
        return {**head, **text, **ids, **media_ids, "vision_config": vision}
    text["model_type"] = "qwen2_5_vl_text"
    return {
        **head,
        **ids,
        **media_ids,
        "text_config": text,
        "vision_config": vision,
        "tie_word_embeddings": layout.tie_word_embeddings,
        **dtype,
    }
