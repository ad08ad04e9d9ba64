"""LoRA adapters (PEFT): add, save, merge, and the reference policy as the adapters switched off.

With LoRA on, a training stage starts from its predecessor's policy with every earlier adapter
merged into the weights, adds one fresh adapter and trains only that adapter. The frozen weights
under it are exactly the stage's starting policy, so the KL reference of RL is the same model
with the adapter switched off (`ReferenceView`): no second copy of the weights. A stage's
checkpoint holds its adapters, not merged weights (recipes/policy.py keeps the chain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avatar_core.config import LoraConfig

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def linear_targets(model: nn.Module) -> list[str]:
    """Full names of every Linear layer but the output layer: what 'all-linear' means.

    PEFT's own 'all-linear' matches by the last name component, which breaks on models whose
    Sequential children are named '0', '2' (Qwen3-Omni's vision merger): '0' then also names
    the encoder's layer 0, a module LoRA cannot wrap. Full names match exactly one module each.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head]


def add_adapter(model: nn.Module, lora: LoraConfig) -> nn.Module:
    """Wrap `model` with a fresh PEFT LoRA adapter; only the adapter weights stay trainable."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = linear_targets(model) if lora.target_modules == "all-linear" else lora.target_modules
    peft_config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def has_adapter(model: nn.Module) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def merge_adapters(model: nn.Module, folders: Iterable[str | Path]) -> nn.Module:
    """`model` with each saved adapter of `folders` merged into its weights, in order."""
    from peft import PeftModel

    for folder in folders:
        folder = Path(folder)
        if not (folder / ADAPTER_WEIGHTS).is_file():
            raise FileNotFoundError(f"adapter folder {folder} has no {ADAPTER_WEIGHTS}")
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    return model


def save_adapter(
    model: nn.Module, folder: str | Path, state_dict: dict[str, torch.Tensor] | None = None
) -> None:
    """The adapter's config and weights (safetensors); `state_dict` when gathered from shards."""
    model.save_pretrained(
        str(folder), safe_serialization=True, save_embedding_layers=False, state_dict=state_dict
    )


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable (adapter) parameters by name: what a LoRA run checkpoints."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class _AdaptersOff:
    """Calls `fn` with the PEFT model's adapters switched off."""

    def __init__(self, peft_model: nn.Module, fn: Callable[..., Any]) -> None:
        self.peft_model = peft_model
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.peft_model.disable_adapter():
            return self.fn(*args, **kwargs)


def reference_view(bundle: Any) -> Any:
    """The policy bundle as its frozen base: same weights, adapters off for every forward.

    Only what the reference is used for is exposed: teacher-forced hidden states and the output
    layer (`completion_logprobs`). Its `model` is the policy's own module, never a copy.
    """
    from avatar_core.models.loading import PolicyBundle

    if not has_adapter(bundle.model):
        raise ValueError("reference_view needs a policy with LoRA adapters")

    class ReferenceView(PolicyBundle):
        def hidden_states_model(self) -> Any:
            return _AdaptersOff(self.model, PolicyBundle.hidden_states_model(self))

        def lm_head(self) -> Any:
            head = self.unwrapped().get_output_embeddings()
            return _AdaptersOff(self.model, head)

    return ReferenceView(
        model=bundle.model, tokenizer=bundle.tokenizer, processor=bundle.processor, kind=bundle.kind
    )
