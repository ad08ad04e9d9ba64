"""Policy loading and saving: the tiny embedded thinker and every kind of models/kinds.py.

A `PolicyBundle` holds the model, its tokenizer, its processor (None for text-only models) and the
model kind. Kinds and what loads them:
- `qwen2_5_omni` / `qwen3_omni_moe`: full checkpoints (thinker + talker + vocoder) load the
  *thinker* only: RL trains the text-producing part, and the speech modules would triple the
  memory. Their weights are read from under `thinker.`; talker/token2wav/code2wav tensors are
  left unread. A saved thinker alone (`model_type` ..._thinker) loads directly.
- `qwen2_5_vl`: `Qwen2_5_VLForConditionalGeneration` (transformers maps the released
  `model.*`/`visual.*` names and the flat legacy config).
- `causal_lm`: anything `AutoModelForCausalLM` loads; text-only prompts.
Tokenizers get their kind's media-token attributes when the released tokenizer_config.json
lacks them, and the chat template from chat_template.json when only the processor carries it.
Processors are always rebuilt around the numpy video processor (processor.py), so nothing here
needs torchvision. Checkpoints whose code lives in the repository (Ola-7B, InternVL's original
release) load only with `trust_remote_code=True`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    Qwen3OmniMoeThinkerConfig,
    Qwen3OmniMoeThinkerForConditionalGeneration,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from avatar_core.config import LoraConfig, TinyModelConfig
from avatar_core.models.kinds import KINDS as KIND_SPECS
from avatar_core.models.kinds import MediaTokens, ensure_media_tokens, kind_of_model_type, kind_spec
from avatar_core.models.processor import build_processor, load_processor
from avatar_core.models.tiny import tiny_thinker_config
from avatar_core.models.tokenizer import train_tokenizer

KINDS = tuple(KIND_SPECS)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_THINKERS = {
    "qwen2_5_omni": (Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration),
    "qwen3_omni_moe": (Qwen3OmniMoeThinkerConfig, Qwen3OmniMoeThinkerForConditionalGeneration),
}

logger = logging.getLogger(__name__)


@dataclass
class PolicyBundle:
    """A policy and everything needed to feed it. `kind` is one of KINDS.

    `lineage` says where the weights came from when LoRA stages are involved: the stage whose
    full checkpoint they start from and the adapter folders merged on top (recipes/policy.py).
    """

    model: PreTrainedModel
    tokenizer: Any
    processor: Any
    kind: str
    lineage: dict[str, Any] = field(default_factory=lambda: {"base_stage": "base", "adapters": []})

    @property
    def media_tokens(self) -> MediaTokens:
        return kind_spec(self.kind).tokens

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
        if not path.is_file() and (folder / "lora_chain.json").is_file():
            raise FileNotFoundError(
                f"{folder} holds LoRA adapters (lora_chain.json), not a model: load it as a stage "
                "(avatar evaluate does), or use its merged/ export (model.lora.merged_export: true)"
            )
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
    return kind_of_model_type(model_type)


def _load_thinker(name_or_path: str, raw: dict[str, Any], kind: str, dtype: torch.dtype) -> PreTrainedModel:
    config_class, model_class = _THINKERS[kind]
    if raw.get("model_type") == config_class.model_type:
        return model_class.from_pretrained(name_or_path, dtype=dtype)
    if "thinker_config" not in raw:
        raise ValueError(
            f"{name_or_path}: config.json of model_type {raw.get('model_type')!r} has no thinker_config"
        )
    thinker_config = config_class(**raw["thinker_config"])
    # Full checkpoints store the thinker under `thinker.`; talker and vocoder keys are unused.
    return model_class.from_pretrained(
        name_or_path, config=thinker_config, dtype=dtype, key_mapping={r"^thinker\.": ""}
    )


def _chat_template_file(folder: Path) -> str | None:
    """The chat template a multimodal repository ships for its processor only."""
    jinja, as_json = folder / "chat_template.jinja", folder / "chat_template.json"
    if jinja.is_file():
        return jinja.read_text()
    if as_json.is_file():
        try:
            return json.loads(as_json.read_text())["chat_template"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{as_json} holds no chat_template string ({err})") from None
    return None


def load_tokenizer(name_or_path: str, kind: str, trust_remote_code: bool = False) -> Any:
    """The checkpoint's tokenizer, left-padded, with a pad token, its chat template and media tokens."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not tokenizer.chat_template and Path(name_or_path).is_dir():
        tokenizer.chat_template = _chat_template_file(Path(name_or_path))
    if not tokenizer.chat_template:
        raise ValueError(
            f"{name_or_path}: the tokenizer has no chat template (tokenizer_config.json, "
            "chat_template.jinja or chat_template.json); prompts are built with it"
        )
    ensure_media_tokens(tokenizer, kind)
    return tokenizer


def apply_lora(model: PreTrainedModel, lora: LoraConfig) -> nn.Module:
    """Wrap `model` with PEFT LoRA adapters; only the adapter weights stay trainable."""
    from avatar_core.models.lora import add_adapter

    return add_adapter(model, lora)


def load_policy(
    name_or_path: str,
    *,
    kind: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    lora: LoraConfig | None = None,
    max_pixels: int | None = None,
    preprocessor: str = "params",
) -> PolicyBundle:
    """Load a policy from a local folder or hub name; see the module docstring for the kinds.

    `max_pixels` and `preprocessor` decide the processor's pixel budget (processor.py).
    """
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; valid kinds: auto, {', '.join(KINDS)}")
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
    raw = _read_config_json(name_or_path)
    detected = _detect_kind(name_or_path, raw, trust_remote_code)
    if kind != "auto" and kind != detected:
        raise ValueError(
            f"{name_or_path}: model.kind {kind!r} does not fit this checkpoint "
            f"(model_type {raw.get('model_type')!r} is kind {detected!r})"
        )
    kind = detected if kind == "auto" else kind
    torch_dtype = _DTYPES[dtype]
    tokenizer = load_tokenizer(name_or_path, kind, trust_remote_code)
    if kind in _THINKERS:
        model = _load_thinker(name_or_path, raw, kind, torch_dtype)
    elif kind == "qwen2_5_vl":
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(name_or_path, dtype=torch_dtype)
    else:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, config=config, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
    processor = (
        load_processor(name_or_path, tokenizer, max_pixels, kind=kind, source=preprocessor)
        if kind_spec(kind).takes_video
        else None
    )
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    wrapped = apply_lora(model, lora) if lora is not None and lora.enabled else model
    return PolicyBundle(model=wrapped, tokenizer=tokenizer, processor=processor, kind=kind)


def save_policy(bundle: PolicyBundle, out_dir: str | Path, state_dict: dict | None = None) -> None:
    """save_pretrained (safetensors) of model, tokenizer and processor into `out_dir`.

    A LoRA-wrapped model is merged into its base weights first, on a copy, so the folder loads
    as an ordinary checkpoint; the live bundle keeps its adapters. `state_dict` replaces the
    model's own (the gathered full weights of a sharded model).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    if hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(out, safe_serialization=True, state_dict=state_dict)
    bundle.tokenizer.save_pretrained(out)
    if bundle.processor is not None:
        bundle.processor.save_pretrained(out)
