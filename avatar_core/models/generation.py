"""Rollouts with behaviour log-probs, and teacher-forced hidden states / log-probs of completions.

Sampling runs `model.generate` (KV cache, the model's own multimodal position handling) with one
logits processor of ours that does all the warping: it records log_softmax(logits / T) of the raw
logits, then applies top-k and top-p to those log-probs for sampling. So the behaviour log-prob
of a sampled token is always that of the *temperature-scaled full distribution*, also under
top-k/top-p truncation (which the importance ratio rho = exp(logp_theta - logp_behaviour) needs,
since the training pass computes the full distribution too), and only one step of [N, V]
log-probs is alive at a time instead of output_logits' [N, L, V]. The generation config passed
is neutral (no temperature, penalties or filters of the checkpoint's generation_config.json,
nor transformers' global top-k of 50): everything that shapes the distribution is explicit here. The media placeholder and marker tokens
of the model's kind (<|AUDIO|>, <|VIDEO|>, <|vision_bos|>, ... for Qwen2.5-Omni, <|video_pad|>,
<|vision_start|>, ... for Qwen2.5-VL and Qwen3-Omni) are never sampled: a completion holding one
would make the teacher-forced pass look for media that does not exist. They keep their share of the
recorded full distribution, as the training pass sees it.

Under sharded training (FSDP2) every process must run the same number of forward passes, so
`generate_rollouts(..., synced=True)` keeps a finished process stepping until all have finished
(transformers' `synced_gpus`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.feature_extraction_utils import BatchFeature

from avatar_core.models.inputs import PER_TOKEN, select_rows


@dataclass
class Rollouts:
    completion_ids: torch.Tensor  # [N, L] long, right-padded with the pad id
    completion_mask: torch.Tensor  # [N, L] float, 1 up to and including the EOS token
    behaviour_logp: (
        torch.Tensor
    )  # [N, L] float32, log_softmax(logits / T) of the sampled tokens, 0 on padding
    prompt_index: torch.Tensor  # [N] long, the prompt of the batch each row belongs to
    texts: list[str]  # decoded completions, special tokens stripped


class _RecordingWarper(LogitsProcessor):
    """Records log_softmax(scores / T) per step, then masks it to the top-k / top-p set."""

    def __init__(self, temperature: float, top_k: int, top_p: float, banned_ids: list[int]) -> None:
        self.banned_ids = banned_ids
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.previous: torch.Tensor | None = None  # [N, V] log-probs of the last step
        self.chosen: list[torch.Tensor] = []  # per step [N] log-probs of the chosen tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.previous is not None:  # input_ids now ends with the token drawn from `previous`
            self.chosen.append(self.previous.gather(-1, input_ids[:, -1:]).squeeze(-1))  # [N]
        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)  # [N, V]
        self.previous = logp
        return self._filter(logp)

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """Log-probs of all steps, [N, steps]; `last_tokens` [N] are the final step's tokens."""
        if self.previous is not None:
            self.chosen.append(self.previous.gather(-1, last_tokens[:, None]).squeeze(-1))  # [N]
        return torch.stack(self.chosen, dim=1)  # [N, steps]

    def _filter(self, logp: torch.Tensor) -> torch.Tensor:
        masked = logp.clone()  # [N, V]
        masked[:, self.banned_ids] = float("-inf")
        if self.top_k > 0 and self.top_k < logp.shape[-1]:
            kth = torch.topk(logp, self.top_k, dim=-1).values[:, -1:]  # [N, 1]
            masked = masked.masked_fill(logp < kth, float("-inf"))  # [N, V]
        if self.top_p < 1.0:
            sorted_logp, order = torch.sort(masked, dim=-1, descending=True)  # [N, V]
            mass_before = torch.cumsum(sorted_logp.softmax(-1), dim=-1) - sorted_logp.softmax(-1)  # [N, V]
            drop_sorted = mass_before >= self.top_p  # [N, V], the top token always stays
            drop = drop_sorted.scatter(-1, order, drop_sorted)  # [N, V] back in vocabulary order
            masked = masked.masked_fill(drop, float("-inf"))  # [N, V]
        return masked


def _completion_mask(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """[N, L] float: 1 up to and including the first EOS, 0 after it (all 1 when no EOS)."""
    is_eos = (tokens == eos_id).long()  # [N, L]
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos  # [N, L] EOS tokens strictly before t
    return (eos_before == 0).float()  # [N, L]


@torch.no_grad()
def generate_rollouts(
    bundle: Any,
    inputs: BatchFeature,
    *,
    group_size: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    greedy: bool = False,
    seed: int | None = None,
    synced: bool = False,
) -> Rollouts:
    """Sample `group_size` completions per prompt of `inputs` (rows grouped by prompt, in order).

    behaviour_logp holds log_softmax(logits / temperature) of each sampled token under the full
    distribution, also when top_p/top_k restrict what is sampled (see the module docstring);
    greedy decoding takes the argmax and reports the same temperature-scaled log-prob.
    """
    if group_size < 1 or max_new_tokens < 1:
        raise ValueError(f"group_size and max_new_tokens must be >= 1, got {group_size} and {max_new_tokens}")
    if temperature <= 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ValueError(
            f"need temperature > 0, 0 < top_p <= 1, top_k >= 0; got {temperature}, {top_p}, {top_k}"
        )
    n_prompts = inputs["input_ids"].shape[0]
    prompt_index = torch.arange(n_prompts).repeat_interleave(group_size)  # [N]
    batch = select_rows(bundle, inputs, prompt_index) if group_size > 1 else inputs
    device = next(bundle.model.parameters()).device
    batch = batch.to(device)
    tokenizer = bundle.tokenizer
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if eos_id is None or eos_id == tokenizer.unk_token_id:
        eos_id = tokenizer.eos_token_id
    vocab = tokenizer.get_vocab()
    banned = [vocab[t] for t in bundle.media_tokens.all() if t in vocab]
    warper = _RecordingWarper(temperature, top_k, top_p, banned)
    # transformers 5 fills every unset field from the checkpoint's generation_config.json (the
    # released Qwen files set top_k 20, top_p 0.8, repetition_penalty 1.05), then from global
    # defaults (top_k 50): set every field that shapes the distribution to its neutral value, and
    # hide the checkpoint's config for the call.
    config = GenerationConfig(
        do_sample=not greedy,
        max_new_tokens=max_new_tokens,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        typical_p=1.0,
        repetition_penalty=1.0,
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos_id,
        return_dict_in_generate=True,
    )
    inner = bundle.unwrapped()
    checkpoint_config = inner.generation_config
    inner.generation_config = GenerationConfig(pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_id)
    was_training = bundle.model.training
    bundle.model.eval()
    try:
        # A seed samples from its own stream and leaves the global one untouched; without one,
        # sampling draws from (and advances) the global stream, so consecutive calls draw fresh numbers.
        with torch.random.fork_rng(
            devices=[device] if device.type == "cuda" else [], enabled=seed is not None
        ):
            if seed is not None:
                torch.manual_seed(seed)
            out = bundle.model.generate(
                **batch,
                generation_config=config,
                logits_processor=LogitsProcessorList([warper]),
                synced_gpus=synced,
            )
    finally:
        inner.generation_config = checkpoint_config
        bundle.model.train(was_training)
    prompt_len = batch["input_ids"].shape[1]
    tokens = out.sequences[:, prompt_len:]  # [N, L]
    logp = warper.finish(tokens[:, -1])  # [N, L]
    mask = _completion_mask(tokens, eos_id)  # [N, L]
    tokens = tokens.masked_fill(mask == 0, tokenizer.pad_token_id)  # [N, L]
    logp = logp * mask  # [N, L]
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return Rollouts(
        completion_ids=tokens.cpu(),
        completion_mask=mask.cpu(),
        behaviour_logp=logp.float().cpu(),
        prompt_index=prompt_index,
        texts=texts,
    )


def _teacher_forced_batch(
    bundle: Any,
    inputs: BatchFeature,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    prompt_index: torch.Tensor,
) -> tuple[BatchFeature, int]:
    batch = select_rows(bundle, inputs, prompt_index)
    device = next(bundle.model.parameters()).device
    batch = batch.to(device)
    completion_ids = completion_ids.to(device)
    prompt_len = batch["input_ids"].shape[1]
    batch["input_ids"] = torch.cat([batch["input_ids"], completion_ids], dim=1)  # [N, P + L]
    attention = completion_mask.to(device=device, dtype=batch["attention_mask"].dtype)  # [N, L]
    batch["attention_mask"] = torch.cat([batch["attention_mask"], attention], dim=1)  # [N, P + L]
    for key in PER_TOKEN:  # completion tokens are text
        if key in batch:
            batch[key] = torch.cat([batch[key], torch.zeros_like(completion_ids)], dim=1)  # [N, P + L]
    return batch, prompt_len


def completion_hidden_states(
    bundle: Any,
    inputs: BatchFeature,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    prompt_index: torch.Tensor,
) -> torch.Tensor:
    """[N, L, H]: the final hidden state that predicts each completion token (teacher forcing).

    Row k is completion k appended to prompt prompt_index[k]; gradients flow when enabled.
    Position P - 1 + t (P: padded prompt length) predicts completion token t.
    """
    if completion_ids.shape != completion_mask.shape or completion_ids.shape[0] != prompt_index.shape[0]:
        raise ValueError(
            f"completion_ids {list(completion_ids.shape)}, completion_mask {list(completion_mask.shape)} "
            f"and prompt_index {list(prompt_index.shape)} do not agree"
        )
    batch, prompt_len = _teacher_forced_batch(bundle, inputs, completion_ids, completion_mask, prompt_index)
    if not bundle.media_tokens.vision_start:
        # Text models number positions 0.. from the first real token during generation (left
        # padding); the multimodal kinds derive their 3-D positions from the attention mask.
        positions = batch["attention_mask"].long().cumsum(-1) - 1  # [N, P + L]
        batch["position_ids"] = positions.clamp(min=0)
    length = completion_ids.shape[1]
    hidden = bundle.hidden_states_model()(**batch, use_cache=False)[0]  # [N, P + L, H]
    return hidden[:, prompt_len - 1 : prompt_len - 1 + length]  # [N, L, H]


def right_padded(
    sequences: list[list[int]] | list[torch.Tensor], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id sequences of different lengths as one [N, L] id tensor padded on the right with
    `pad_id`, and its [N, L] float mask (1 on real tokens)."""
    length = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)  # [N, L]
    mask = torch.zeros(len(sequences), length)  # [N, L]
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1.0
    return ids, mask


def completion_logits(
    bundle: Any,
    inputs: BatchFeature,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    prompt_index: torch.Tensor,
) -> torch.Tensor:
    """[N, L, V] logits predicting each completion token (teacher forcing) under the current model."""
    hidden = completion_hidden_states(
        bundle, inputs, completion_ids, completion_mask, prompt_index
    )  # [N, L, H]
    head = bundle.lm_head()
    if head is None:  # not a plain Linear (e.g. LoRA-wrapped): the model's own output projection
        head = bundle.unwrapped().get_output_embeddings()
    return head(hidden)  # [N, L, V]


def completion_logprobs(
    bundle: Any,
    inputs: BatchFeature,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    prompt_index: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """[N, L] log_softmax(logits / T) of each completion token under the current model, 0 on padding."""
    logits = completion_logits(bundle, inputs, completion_ids, completion_mask, prompt_index)  # [N, L, V]
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)  # [N, L, V]
    ids = completion_ids.to(logp.device)
    token_logp = logp.gather(-1, ids[..., None]).squeeze(-1)  # [N, L]
    return token_logp * completion_mask.to(token_logp.device)  # [N, L]
