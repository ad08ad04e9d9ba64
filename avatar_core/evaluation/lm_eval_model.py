"""lm-eval adapter: `--model avatar` runs any AVATAR checkpoint on lm-eval tasks, video and audio included.

    lm_eval --model avatar --model_args pretrained=checkpoints/rl/s3/model --tasks avatar_synth \\
        --include_path "$(python -c 'from avatar_core.evaluation.lm_eval_tasks import TASKS_DIR; print(TASKS_DIR)')"

lm-eval finds `avatar` only once this module is imported (it has no plugin discovery), so from a
shell run the same arguments through `python -m avatar_core.evaluation.lm_eval_tasks`, which
imports it and adds the include path; from Python, import this module and call
`lm_eval.simple_evaluate(model="avatar", ...)`. Importing it keeps lm-eval's own models (hf, ...)
available too.

Run it from the repository root after `avatar evaluate` (it writes the task data,
`results/eval/lm_eval/<set>.jsonl`). model_args: `pretrained` (checkpoint folder or hub name),
optional `params` (a params.yaml whose `data.media`, `model.kind`, `model.dtype` and
`model.trust_remote_code` are used), `n_frames`, `max_pixels`, `dtype`, `kind`, `trust_remote_code`;
lm-eval's own `--batch_size` and `--device` flags set the batch size and the device.

Prompts are built as `avatar evaluate` builds them: the system prompt, the video item and the
request's text (the task gives `format_question(sample)`) through the checkpoint's chat template
and `encode_prompts`; clips are decoded by `load_clip` with the same media settings, and
generation is greedy through `generate_rollouts`. Requests of one task are batched in order, in
chunks of `batch_size`, as `greedy_answers` chunks a set, so with the same checkpoint, media
settings and batch size both give the same answers. Departures from lm-eval's HF model: there
is no few-shot chat formatting of its own (the context is the user turn's text), decoding is
always greedy (a task asking for `do_sample: true` is refused), and `loglikelihood_rolling`
(perplexity tasks) is not offered: these checkpoints are chat models evaluated on questions.
"""

from __future__ import annotations

import logging
from itertools import groupby
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval imports its own models only into an empty registry)
import torch
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from pydantic import ValidationError
from tqdm.auto import tqdm

from avatar_core.config import MediaConfig, load_config
from avatar_core.data.media import Clip, decode_clip
from avatar_core.data.schema import SYSTEM_PROMPT

log = logging.getLogger(__name__)

_MEDIA_ARGS = ("n_frames", "max_pixels")


def chat_messages(context: str, with_video: bool) -> list[dict[str, Any]]:
    """The messages `render_messages(sample)` builds, with `context` = `format_question(sample)`."""
    content: list[dict[str, Any]] = [{"type": "video"}] if with_video else []
    content.append({"type": "text", "text": context})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def video_path(multimodal: Any, where: str) -> str | None:
    """The media path of a request's multimodal argument (`{"visual": ..., "audio": ...}`), or None."""
    if not multimodal:
        return None
    if not isinstance(multimodal, dict):
        raise ValueError(
            f"{where}: multimodal argument must be a dict with 'visual'/'audio', got {multimodal!r}"
        )
    value = multimodal.get("visual") or multimodal.get("audio")
    if isinstance(value, (list, tuple)):
        paths = [v for v in value if v]
        if len(paths) > 1:
            raise ValueError(
                f"{where}: the avatar model takes one video per request, got {len(paths)}: {paths}"
            )
        value = paths[0] if paths else None
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: the media value must be a file path, got {type(value).__name__}")
    return value


def _greedy_budget(gen_kwargs: dict[str, Any], where: str) -> tuple[list[str], int]:
    """(stop strings, max new tokens) of a generate_until request; sampling is refused."""
    if gen_kwargs.get("do_sample"):
        raise ValueError(f"{where}: generation_kwargs do_sample=True; the avatar model decodes greedily only")
    until = gen_kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    max_gen_toks = int(gen_kwargs.get("max_gen_toks", 256))
    if max_gen_toks < 1:
        raise ValueError(f"{where}: generation_kwargs max_gen_toks must be >= 1, got {max_gen_toks}")
    return until, max_gen_toks


def cut_at_stops(text: str, until: list[str]) -> str:
    """`text` up to the earliest stop string (greedy decoding, so cutting afterwards is exact)."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text


@register_model("avatar")
class AvatarLM(LM):
    """An AVATAR policy behind lm-eval's LM interface (see the module docstring)."""

    MULTIMODAL = True  # tasks with doc_to_image/doc_to_audio deliver the media path in args[2]

    def __init__(
        self,
        pretrained: str | None = None,
        params: str | None = None,
        n_frames: int | None = None,
        max_pixels: int | None = None,
        batch_size: int | str = 1,
        dtype: str | None = None,
        kind: str | None = None,
        trust_remote_code: bool | None = None,
        device: str | None = None,
        max_batch_size: int | None = None,  # passed by lm-eval; batches here are fixed-size
    ) -> None:
        super().__init__()
        if not pretrained:
            raise ValueError("model_args: pretrained=<checkpoint folder> is required for --model avatar")
        try:
            self.batch_size = int(batch_size)
        except ValueError:
            raise ValueError(
                f"model_args batch_size must be a positive integer, got {batch_size!r}"
            ) from None
        if self.batch_size < 1:
            raise ValueError(f"model_args batch_size must be a positive integer, got {batch_size!r}")
        media = MediaConfig()
        model_cfg = None
        if params:
            cfg = load_config(params)
            media, model_cfg = cfg.data.media, cfg.model
        overrides = {
            k: v for k, v in {"n_frames": n_frames, "max_pixels": max_pixels}.items() if v is not None
        }
        try:
            self.media = MediaConfig.model_validate({**media.model_dump(), **overrides})
        except ValidationError as err:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ValueError(f"model_args {', '.join(_MEDIA_ARGS)}: {bad}") from None
        from avatar_core.models.loading import load_policy

        self.bundle = load_policy(
            str(pretrained),
            kind=kind or (model_cfg.kind if model_cfg else "auto"),
            dtype=dtype or (model_cfg.dtype if model_cfg else "float32"),
            trust_remote_code=bool(
                trust_remote_code
                if trust_remote_code is not None
                else model_cfg and model_cfg.trust_remote_code
            ),
            max_pixels=self.media.max_pixels,
        )
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            log.warning(
                "device %s requested (lm-eval's default) but CUDA is unavailable; running on CPU", device
            )
        elif device:
            self.bundle.model.to(torch.device(device))
        self.bundle.model.eval()
        self._clips: dict[str, Clip] = {}

    # ------------------------------------------------------------------ shared pieces

    def clip(self, path: str | None) -> Clip | None:
        """The decoded clip of `path` (once per path), with the media settings of `avatar evaluate`."""
        if path is None:
            return None
        if path not in self._clips:
            self._clips[path] = decode_clip(path, self.media)
        return self._clips[path]

    def encode(self, contexts: list[str], paths: list[str | None]):
        """Left-padded model batch of chat prompts, exactly as `greedy_answers` encodes samples."""
        from avatar_core.models.inputs import encode_prompts

        messages = [chat_messages(c, p is not None) for c, p in zip(contexts, paths, strict=True)]
        return encode_prompts(self.bundle, messages, [self.clip(p) for p in paths])

    def _chunks(self, requests: list[Instance], key) -> list[list[int]]:
        """Request indices in order, split at task (and `key`) changes, then into batch_size chunks."""
        chunks: list[list[int]] = []
        runs = groupby(range(len(requests)), key=lambda i: (requests[i].task_name, key(i)))
        for _, run in runs:
            run = list(run)
            chunks += [run[j : j + self.batch_size] for j in range(0, len(run), self.batch_size)]
        return chunks

    # ------------------------------------------------------------------ lm-eval interface

    @torch.no_grad()
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        from avatar_core.models.generation import generate_rollouts

        parsed = []
        for i, r in enumerate(requests):
            where = f"request {i} (task {r.task_name}, doc {r.doc_id})"
            context, gen_kwargs = r.args[0], dict(r.args[1])
            until, max_new = _greedy_budget(gen_kwargs, where)
            path = video_path(r.args[2] if len(r.args) > 2 else None, where)
            parsed.append((context, path, until, max_new))
        outputs: list[str] = [""] * len(requests)
        for chunk in tqdm(
            self._chunks(requests, lambda i: parsed[i][3]), disable=disable_tqdm, desc="avatar"
        ):
            inputs = self.encode([parsed[i][0] for i in chunk], [parsed[i][1] for i in chunk])
            max_new = parsed[chunk[0]][3]
            out = generate_rollouts(self.bundle, inputs, group_size=1, max_new_tokens=max_new, greedy=True)
            for i, text in zip(chunk, out.texts, strict=True):
                outputs[i] = cut_at_stops(text, parsed[i][2])
                self.cache_hook.add_partial("generate_until", requests[i].args[:2], outputs[i])
        return outputs

    @torch.no_grad()
    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(sum of log-probs of the continuation after the chat prompt, whether greedy decoding gives it).

        The continuation is tokenised on its own, as given (no special tokens), and appended to the
        prompt, i.e. it is scored as the start of the assistant turn.
        """
        parsed = []
        for i, r in enumerate(requests):
            where = f"request {i} (task {r.task_name}, doc {r.doc_id})"
            ids = self.bundle.tokenizer(r.args[1], add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"{where}: empty continuation {r.args[1]!r}; nothing to score")
            parsed.append((r.args[0], video_path(r.args[2] if len(r.args) > 2 else None, where), ids))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        for chunk in tqdm(self._chunks(requests, lambda i: 0), disable=disable_tqdm, desc="avatar"):
            inputs = self.encode([parsed[i][0] for i in chunk], [parsed[i][1] for i in chunk])
            scored = continuation_scores(self.bundle, inputs, [parsed[i][2] for i in chunk])
            for i, result in zip(chunk, scored, strict=True):
                results[i] = result
                self.cache_hook.add_partial("loglikelihood", requests[i].args[:2], result)
        return results

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError(
            "--model avatar does not score rolling log-likelihoods (perplexity tasks): its checkpoints "
            "are chat models; use generate_until or multiple_choice tasks"
        )


@torch.no_grad()
def continuation_scores(bundle: Any, inputs: Any, continuations: list[list[int]]) -> list[tuple[float, bool]]:
    """Teacher-forced (sum log-prob, all tokens greedy) of each continuation after its prompt row."""
    from avatar_core.models.generation import completion_logits, right_padded

    n = len(continuations)
    ids, mask = right_padded(continuations, bundle.tokenizer.pad_token_id)  # [N, L]
    logits = completion_logits(bundle, inputs, ids, mask, torch.arange(n)).float()  # [N, L, V]
    logp = torch.log_softmax(logits, dim=-1).cpu()  # [N, L, V]
    token_logp = logp.gather(-1, ids[..., None]).squeeze(-1) * mask  # [N, L]
    hits = (logp.argmax(-1) == ids) | (mask == 0)  # [N, L]
    return [(float(token_logp[k].sum()), bool(hits[k].all())) for k in range(n)]
