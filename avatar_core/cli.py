"""`avatar <stage>`: the command line that dvc.yaml stages and people run.

Every subcommand reads params.yaml (`--params`), applies `--set key.path=value` overrides, and calls
one recipe function with the typed config. Recipes write only under the folders named in the
`paths:` section, so DVC can track them as stage outputs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from avatar_core.config import STAGES, AvatarConfig, ConfigError, load_config

# Stage name -> "module:function"; imported lazily so `avatar --help` stays fast.
RECIPES: dict[str, str] = {
    "ingest": "avatar_core.recipes.ingest:run_ingest",
    "hints": "avatar_core.recipes.hints:run_hints",
    "sft": "avatar_core.recipes.sft:run_sft",
    "rl": "avatar_core.recipes.rl:run_rl",
    "evaluate": "avatar_core.recipes.evaluate:run_evaluate",
    "history": "avatar_core.recipes.history:run_history",
    "ablate": "avatar_core.recipes.ablation:run_ablate",
}


def _recipe(name: str) -> Callable[..., object]:
    module_name, func_name = RECIPES[name].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {
        "ingest": "generate the synthetic data set or ingest a real one, and build/copy the base model",
        "hints": "pre-compute a hint for every training prompt that lacks one",
        "sft": "cold-start supervised fine-tuning on the reasoning traces",
        "rl": "one RL stage (s1 visual, s2 audio-visual, s3 sound-source localisation)",
        "evaluate": "greedy evaluation of every stage's checkpoint with bootstrap confidence intervals",
        "history": "append the latest evaluation to the nightly history table and plot",
        "ablate": "one cell of the AVATAR vs GRPO ablation study, or (--summary) its tables and figures",
        "preset": "merge a real model's preset (checkpoint, LoRA, media, processes, RL values) into params.yaml",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one value, e.g. --set rl.s1.steps=10 (repeatable)",
        )
        p.add_argument("--no-progress", action="store_true", help="disable progress bars")
        if name == "rl":
            p.add_argument("--stage", required=True, choices=STAGES, help="which RL stage to run")
        if name == "ablate":
            p.add_argument("--setting", help="ablation.settings name of the cell")
            p.add_argument("--variant", help="ablation.variants name of the cell")
            p.add_argument("--seed", type=int, help="seed of the cell (one of ablation.seeds)")
            p.add_argument("--summary", action="store_true", help="summarise every finished cell instead")
        if name == "preset":
            p.add_argument("name", nargs="?", help="preset name (see --list)")
            p.add_argument("--list", action="store_true", help="list the presets and exit")
    return parser


def _preset(args: argparse.Namespace) -> int:
    from avatar_core.presets import apply_preset, preset_names

    if args.list or not args.name:
        print("\n".join(preset_names()))
        return 0 if args.list else 2
    try:
        apply_preset(args.name, args.params)
    except ConfigError as err:
        print(f"avatar preset: {err}", file=sys.stderr)
        return 2
    print(f"preset {args.name} merged into {args.params}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "preset":
        return _preset(args)
    try:
        cfg: AvatarConfig = load_config(args.params, args.overrides)
    except ConfigError as err:
        print(f"avatar {args.command}: {err}", file=sys.stderr)
        return 2
    from avatar_core.pipeline.launch import launched, relaunch

    if args.command in ("sft", "rl") and cfg.distributed.num_processes > 1 and not launched():
        return relaunch(cfg, list(sys.argv[1:] if argv is None else argv))
    from avatar_core.recipes.common import set_threads

    set_threads(cfg.num_threads)
    kwargs: dict[str, object] = {"progress": not args.no_progress}
    if args.command == "rl":
        kwargs["stage"] = args.stage
    if args.command == "ablate":
        if not args.summary and None in (args.setting, args.variant, args.seed):
            print(
                "avatar ablate: give --setting, --variant and --seed of one cell, or --summary",
                file=sys.stderr,
            )
            return 2
        kwargs.update(setting=args.setting, variant=args.variant, seed=args.seed, summary=args.summary)
    _recipe(args.command)(cfg, **kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
