"""Teacher-forced accuracy of each reasoning step of a stage's checkpoint, with media and blanked.

    python scripts/probe_steps.py --stage sft [--tasks localise,av_match]
        [--controls media,blank_audio,blank_video] [--split test] [--out steps.json] [--set key=value ...]

For every task family and control it prints how often each step of the trace is right when the model
reads the correct trace (avatar_core/evaluation/trace_steps.py): e.g. for localise whether the beep
count, each square's flash count, the comparison and the place are right on their own. A step that
needs a modality falls to chance when that modality is blanked. `--set` takes the same overrides as
`avatar` (e.g. `--set paths.sft_dir=...` to probe another run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from avatar_core.config import load_config
    from avatar_core.data.loader import control_clips
    from avatar_core.evaluation.trace_steps import teacher_forced_steps
    from avatar_core.recipes.common import load_samples, open_clips, set_threads
    from avatar_core.recipes.policy import load_stage_policy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", default="sft", help="checkpoint to probe: base, sft, s1, s2 or s3")
    ap.add_argument("--tasks", default=None, help="comma-separated task families (default: all in the split)")
    ap.add_argument("--controls", default="media,blank_audio,blank_video")
    ap.add_argument("--split", default="test")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    cfg = load_config(args.params, args.set)
    set_threads(cfg.num_threads)
    tasks = args.tasks.split(",") if args.tasks else None
    samples = load_samples(cfg, args.split, tasks)
    bundle = load_stage_policy(cfg, args.stage)
    families = sorted({s.task for s in samples})
    results: dict[str, dict[str, dict[str, list[int]]]] = {}
    with open_clips(cfg) as loader:
        for family in families:
            subset = [s for s in samples if s.task == family]
            for control in args.controls.split(","):
                counts = teacher_forced_steps(bundle, subset, control_clips(loader, control))
                results.setdefault(family, {})[control] = {k: list(v) for k, v in counts.items()}
                row = "  ".join(f"{k} {r / n:.2f} ({n})" for k, (r, n) in counts.items())
                print(f"{family:14s} {control:12s} {row}", flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps({"stage": args.stage, "split": args.split, "steps": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
