"""Policy loading and saving: the tiny embedded thinker, Qwen2.5-Omni, Qwen2.5-VL, plain causal LMs.

A `PolicyBundle` holds the model, its tokenizer, its processor (None for text-only models) and the
model family. Qwen2.5-Omni full checkpoints (thinker + talker + token2wav) load the *thinker*
only: RL trains the text-producing part, and the speech modules would triple the memory. Their
keys are mapped from `thinker.*`; talker/token2wav tensors are left unread. Processors are always
rebuilt around the numpy video processor (processor.py), so nothing here needs torchvision.
Checkpoints whose code lives in the repository (Ola-7B, InternVL's original release) load only
with `trust_remote_code=True`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from avatar_core.config import LoraConfig, TinyModelConfig
from avatar_core.models.processor import build_processor, load_processor
from avatar_core.models.tiny import tiny_thinker_config
from avatar_core.models.tokenizer import train_tokenizer

KINDS = ("qwen2_5_omni", "qwen2_5_vl", "causal_lm")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_OMNI_TYPES = ("qwen2_5_omni", "qwen2_5_omni_thinker")

logger = logging.getLogger(__name__)


@dataclass
class PolicyBundle:
    """A policy and everything needed to feed it. `kind` is one of KINDS."""

    model: PreTrainedModel
    tokenizer: Any
    processor: Any
    kind: str

    def unwrapped(self) -> PreTrainedModel:
        """The transformers model under any PEFT wrapper (LoRA layers stay injected)."""
        model = self.model
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def lm_head(self) -> nn.Linear | None:
        """The output projection (`thinker.lm_head` for Omni), or None if it is not a plain Linear."""
        head = self.unwrapped().get_output_embeddings()
        if hasattr(head, "base_layer"):  # a LoRA-wrapped head: its frozen base projection
            return None
        return head if isinstance(head, nn.Linear) else None

    def hidden_states_model(self) -> nn.Module:
        """The module whose output[0] is the final (normed) hidden state before `lm_head`.

        It takes the same keyword inputs as the full model (multimodal tensors included) and
        skips the vocabulary projection, so the fused loss never materialises full logits.
        """
        model = self.unwrapped()
        inner = getattr(model, model.base_model_prefix, None)
        if not isinstance(inner, nn.Module) or inner is model:
            raise TypeError(f"{type(model).__name__} exposes no base model under {model.base_model_prefix!r}")
        return inner


# --------------------------------------------------------------------------- tiny model


def build_tiny_policy(
    cfg: TinyModelConfig, corpus: Iterable[str], seed: int = 0, max_pixels: int = 56 * 56
) -> PolicyBundle:
    """Train the tokenizer on `corpus`, build the tiny Omni thinker with seeded random weights."""
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    processor = build_processor(tokenizer, max_pixels, cfg.temporal_patch_size)
    config = tiny_thinker_config(tokenizer, cfg)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return PolicyBundle(model=model.eval(), tokenizer=tokenizer, processor=processor, kind="qwen2_5_omni")


# --------------------------------------------------------------------------- loading


def _read_config_json(name_or_path: str) -> dict[str, Any]:
    """config.json of a local folder, or of a hub name (from the local cache when offline)."""
    folder = Path(name_or_path)
    if folder.is_dir():
        path = folder / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no config.json: not a transformers checkpoint folder")
    else:
        from transformers.utils import cached_file

        try:
            path = Path(cached_file(name_or_path, "config.json"))
        except OSError as err:
            raise FileNotFoundError(
                f"cannot find model {name_or_path!r}: not a local folder and not reachable on the hub ({err})"
            ) from None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def _detect_kind(name_or_path: str, raw: dict[str, Any], trust_remote_code: bool) -> str:
    model_type = raw.get("model_type", "")
    needs_code = "auto_map" in raw or model_type not in CONFIG_MAPPING
    if needs_code and not trust_remote_code:
        raise ValueError(
            f"model {name_or_path!r} (model_type {model_type!r}) needs code from its repository "
            "(remote code) to load; if you trust it, opt in with trust_remote_code=True "
            "(params.yaml: model.trust_remote_code: true)"
        )
    if model_type in _OMNI_TYPES:
        return "qwen2_5_omni"
    if model_type == "qwen2_5_vl":
        return "qwen2_5_vl"
    return "causal_lm"


def _load_omni_thinker(name_or_path: str, raw: dict[str, Any], dtype: torch.dtype) -> PreTrainedModel:
    if raw.get("model_type") == "qwen2_5_omni_thinker":
        return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(name_or_path, dtype=dtype)
    if "thinker_config" not in raw:
        raise ValueError(f"{name_or_path}: config.json of model_type qwen2_5_omni has no thinker_config")
    thinker_config = Qwen2_5OmniThinkerConfig(**raw["thinker_config"])
    # Full Omni checkpoints store the thinker under `thinker.`; talker/token2wav keys are unused.
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        name_or_path, config=thinker_config, dtype=dtype, key_mapping={r"^thinker\.": ""}
    )


def apply_lora(model: PreTrainedModel, lora: LoraConfig) -> nn.Module:
    """Wrap `model` with PEFT LoRA adapters; only the adapter weights stay trainable."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def load_policy(
    name_or_path: str,
    *,
    kind: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    lora: LoraConfig | None = None,
    max_pixels: int | None = None,
) -> PolicyBundle:
    """Load a policy from a local folder or hub name; see the module docstring for the families."""
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; valid kinds: auto, {', '.join(KINDS)}")
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
    raw = _read_config_json(name_or_path)
    detected = _detect_kind(name_or_path, raw, trust_remote_code)
    kind = detected if kind == "auto" else kind
    torch_dtype = _DTYPES[dtype]
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if kind == "qwen2_5_omni":
        if raw.get("model_type") not in _OMNI_TYPES:
            raise ValueError(
                f"{name_or_path}: kind qwen2_5_omni needs a Qwen2.5-Omni checkpoint, got {raw.get('model_type')!r}"
            )
        model = _load_omni_thinker(name_or_path, raw, torch_dtype)
        processor = load_processor(name_or_path, tokenizer, max_pixels)
    elif kind == "qwen2_5_vl":
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(name_or_path, dtype=torch_dtype)
        processor = load_processor(name_or_path, tokenizer, max_pixels, kind="qwen2_5_vl")
    else:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, config=config, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        processor = None
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    wrapped = apply_lora(model, lora) if lora is not None and lora.enabled else model
    return PolicyBundle(model=wrapped, tokenizer=tokenizer, processor=processor, kind=kind)


def save_policy(bundle: PolicyBundle, out_dir: str | Path) -> None:
    """save_pretrained (safetensors) of model, tokenizer and processor into `out_dir`.

    A LoRA-wrapped model is merged into its base weights first, on a copy, so the folder loads
    as an ordinary checkpoint; the live bundle keeps its adapters.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    if hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    bundle.tokenizer.save_pretrained(out)
    if bundle.processor is not None:
        bundle.processor.save_pretrained(out)
