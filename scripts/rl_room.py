"""Does an RL stage add to the SFT checkpoint on clips SFT never saw? A paired check.

    avatar ingest --set seed=201 --set paths.data_dir=data/rl_pool --set paths.model_dir=runs/rl_room/unused
    avatar ingest --set seed=301 --set paths.data_dir=data/rl_eval --set paths.model_dir=runs/rl_room/unused \
        --set data.synthetic.n_train=48 --set data.synthetic.n_test=768
    python scripts/rl_room.py --name grpo --pool data/rl_pool --eval data/rl_eval \
        [--stage s2] [--set rl.s2.optim.lr=3e-4 ...]

The RL stage `--stage` is trained from the SFT checkpoint (`paths.sft_dir`, as `avatar sft` left
it) on prompts of the pool data set's train split, then the SFT checkpoint and the stage's result
are scored greedily on the same clips, the test split of the eval data set. Data sets of other
seeds than the one SFT trained on hold clips SFT never saw, so the check separates what RL teaches
from what it memorises. Printed and written to `paths.runs_dir`/rl_room/<name>/result.json: per
family and overall, both accuracies and their paired difference with a bootstrap interval over
clips, and the stage's training reward and accuracy by quarter of the run. `--pool data/synthetic`
(the SFT data) trains on the prompts SFT trained on, as the curriculum does. The stage's
checkpoint, step log and metrics are under `paths.runs_dir`/rl_room/<name>/; `--set` takes the
same overrides as `avatar`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def quarters(log_path: Path) -> list[dict[str, float]]:
    """Mean training reward and accuracy over each quarter of the stage's steps."""
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    bounds = [round(k * len(records) / 4) for k in range(5)]
    parts = [records[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return [
        {
            "steps": f"{part[0]['step']}-{part[-1]['step']}",
            "reward": sum(r["reward_mean"] for r in part) / len(part),
            "accuracy": sum(r["accuracy"] for r in part) / len(part),
            "zero_variance_groups": sum(r["zero_adv_frac_before"] for r in part) / len(part),
        }
        for part in parts
    ]


def main(argv: list[str] | None = None) -> int:
    from avatar_core.config import load_config
    from avatar_core.evaluation.scoring import greedy_answers, score_answers
    from avatar_core.evaluation.study_stats import paired_difference
    from avatar_core.recipes.common import load_samples, open_clips, set_threads
    from avatar_core.recipes.policy import load_stage_policy
    from avatar_core.recipes.rl import run_rl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="run name: results go to <paths.runs_dir>/rl_room/<name>/")
    ap.add_argument(
        "--pool", required=True, help="data set whose train split the RL stage draws prompts from"
    )
    ap.add_argument("--eval", required=True, dest="eval_data", help="data set whose test split scores both")
    ap.add_argument("--stage", default="s2", choices=["s1", "s2", "s3"])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    out = Path(load_config(args.params, args.set).paths.runs_dir) / "rl_room" / args.name
    # everything the stage writes stays under `out`: the curriculum's own checkpoints and metrics
    # are untouched
    where = [f"paths.{key}_dir={out / key}" for key in ("rl", "runs", "metrics")]
    cfg = load_config(args.params, [*args.set, *where, f"paths.data_dir={args.pool}"])
    set_threads(cfg.num_threads)
    run_rl(cfg, args.stage, progress=not args.no_progress, init_stage="sft")

    cfg = load_config(args.params, [*args.set, *where, f"paths.data_dir={args.eval_data}"])
    tasks = cfg.rl.stage(args.stage).tasks
    samples = load_samples(cfg, "test", tasks, key=f"rl.{args.stage}.tasks")
    e = cfg.evaluate
    scores = {}
    with open_clips(cfg) as clips:
        for stage in ("sft", args.stage):
            bundle = load_stage_policy(cfg, stage)
            texts = greedy_answers(
                bundle,
                samples,
                clips,
                e.max_new_tokens,
                e.batch_size,
                desc=stage,
                progress=not args.no_progress,
            )
            scores[stage] = score_answers(texts, samples)

    result: dict = {"stage": args.stage, "pool": args.pool, "eval": args.eval_data, "overrides": args.set}
    families = ["overall", *sorted({s.task for s in samples})]
    for family in families:
        keep = [i for i, s in enumerate(samples) if family == "overall" or s.task == family]
        before = [scores["sft"][i] for i in keep]
        after = [scores[args.stage][i] for i in keep]
        diff = paired_difference(after, before, n_boot=e.bootstrap_samples, confidence=e.confidence)
        result[family] = {
            "n": len(keep),
            "sft": sum(before) / len(keep),
            args.stage: sum(after) / len(keep),
            **diff,
        }
        print(
            f"{family:14s} n={len(keep):4d}  sft {result[family]['sft']:.3f}  {args.stage} "
            f"{result[family][args.stage]:.3f}  difference {diff['mean']:+.3f} "
            f"[{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]"
        )
    result["training"] = quarters(out / "runs" / args.stage / "log.jsonl")
    for q in result["training"]:
        print(
            f"steps {q['steps']:>9s}: reward {q['reward']:.3f}  accuracy {q['accuracy']:.3f}  "
            f"zero-variance groups {q['zero_variance_groups']:.2f}"
        )
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
