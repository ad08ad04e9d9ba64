"""`avatar hints`: a hint for every training prompt that lacks one, cached per prompt id.

The cache is `paths.hints_dir/hints.jsonl` (one `{"id", "hint", "teacher"}` line per prompt);
reruns only fill what is missing. Teacher `synthetic` takes the generator's own hints (they are
verifiable and free); any other value names a transformers model (the paper uses
Qwen2.5-VL-72B) that is asked, with the question, for a hint that does not reveal the answer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm.auto import tqdm

from avatar_core.config import AvatarConfig
from avatar_core.data.schema import Sample, format_question
from avatar_core.recipes.common import load_samples, read_hint_cache, write_json

log = logging.getLogger(__name__)


def read_cache(path: Path) -> dict[str, dict]:
    return read_hint_cache(path)


def teacher_hints(cfg: AvatarConfig, samples: list[Sample], progress: bool) -> dict[str, str]:
    """Ask a transformers model for one hint per sample, in batches."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg.hints.teacher, trust_remote_code=cfg.model.trust_remote_code)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(
        cfg.hints.teacher, trust_remote_code=cfg.model.trust_remote_code
    )
    model.eval()
    out: dict[str, str] = {}
    size = cfg.hints.batch_size
    for i in tqdm(range(0, len(samples), size), desc="hints", disable=not progress):
        chunk = samples[i : i + size]
        prompts = [
            tok.apply_chat_template(
                [{"role": "user", "content": f"{cfg.hints.prompt}\n\n{format_question(s)}"}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for s in chunk
        ]
        enc = tok(prompts, return_tensors="pt", padding=True)
        gen = model.generate(**enc, max_new_tokens=cfg.hints.max_new_tokens, do_sample=False)
        for s, row in zip(chunk, gen[:, enc["input_ids"].shape[1] :], strict=True):
            out[s.id] = tok.decode(row, skip_special_tokens=True).strip()
    return out


def run_hints(cfg: AvatarConfig, progress: bool = True) -> dict:
    path = Path(cfg.paths.hints_dir) / "hints.jsonl"
    cache = read_cache(path)
    samples = load_samples(cfg, "train")
    missing = [s for s in samples if s.id not in cache]
    if cfg.hints.teacher == "synthetic":
        new = {s.id: s.hint for s in missing if s.hint}
        no_hint = [s.id for s in missing if not s.hint]
        if no_hint:
            log.warning(
                "%d samples carry no hint and teacher is 'synthetic': they stay without one", len(no_hint)
            )
    else:
        new = teacher_hints(cfg, missing, progress) if missing else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for sid, hint in new.items():
            f.write(json.dumps({"id": sid, "hint": hint, "teacher": cfg.hints.teacher}) + "\n")
    summary = {
        "prompts": len(samples),
        "cached_before": len(cache),
        "added": len(new),
        "without_hint": len(samples) - len(cache) - len(new),
    }
    write_json(Path(cfg.paths.hints_dir) / "summary.json", summary)
    log.info("hints: %s", summary)
    return summary
