"""Two RL updates on a fixed global batch, run as 1 process or as N sharded processes.

    python sharded_worker.py PROJECT ROWS OUT                       # one process, the whole batch
    accelerate launch --config_file fsdp2.yaml --num_processes 2 sharded_worker.py PROJECT ROWS OUT

ROWS (written by test_sharded.py) holds completions, behaviour log-probs, advantages and replay
flags of rows whose prompts are training samples of PROJECT. Process r of N takes rows
[r*n/N, (r+1)*n/N): the global batch is the same, only split. Each update is the recipe's own
path: `collate` -> `objective_step` (fused kernel, AVATAR objective with TAS and replayed rows)
-> `clip_grad_norm_` -> AdamW; under FSDP2 the gradient is reduce-scattered by FSDP, the
replicated output layer's all-reduced. Process 0 writes the final full weights to OUT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_helpers import tiny_config  # noqa: E402

from avatar_core.recipes.common import load_samples, open_clips, set_threads  # noqa: E402
from avatar_core.recipes.distributed import Distributed  # noqa: E402
from avatar_core.recipes.policy import load_trainable_policy  # noqa: E402
from avatar_core.recipes.rl import objective_params  # noqa: E402
from avatar_core.recipes.rl_batch import Row, collate  # noqa: E402
from avatar_core.recipes.rl_parts import build_optimizer, objective_step  # noqa: E402

UPDATES = 2


def rl_config(project: Path):
    cfg = tiny_config(project)
    s1 = cfg.rl.s1
    s1.objective.beta = 0.0
    s1.optim.lr = 1e-3
    s1.optim.max_grad_norm = 0.05  # small enough that clipping acts: the norm must be the global one
    return cfg


def main(project: Path, rows_file: Path, out: Path) -> None:
    set_threads(1)
    dist = Distributed.setup()
    cfg = rl_config(project)
    scfg = cfg.rl.s1
    bundle = load_trainable_policy(cfg, "sft", dist)
    tensors = load_file(str(rows_file))
    meta = json.loads(rows_file.with_suffix(".json").read_text())
    by_id = {s.id: s for s in load_samples(cfg, "train")}
    rows = [
        Row(
            sample=by_id[m["id"]],
            completion_ids=tensors[f"ids.{i}"],
            behaviour_logp=tensors[f"logp.{i}"],
            reward=0.0,
            advantage=m["advantage"],
            is_replay=m["replay"],
            hinted=False,
            group=m["group"],
        )
        for i, m in enumerate(meta)
    ]
    share = len(rows) // dist.world
    mine = rows[dist.rank * share : (dist.rank + 1) * share]
    optimizer, _ = build_optimizer(bundle.model, scfg.optim, UPDATES)
    clips = open_clips(cfg)
    bundle.model.train()
    for _ in range(UPDATES):
        tb = collate(bundle, mine, clips, {}, bundle.tokenizer.pad_token_id)
        objective_step(bundle, None, tb, objective_params(scfg), scfg, dist)
        dist.clip_grad_norm_(bundle.model, scfg.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    full = dist.full_state(bundle.model, trainable_only=False)
    if dist.rank == 0:
        state = full if full is not None else bundle.model.state_dict()
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(out))
    dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
