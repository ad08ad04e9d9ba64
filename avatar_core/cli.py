"""`avatar <stage>`: the command line that dvc.yaml stages and people run.

Every subcommand reads params.yaml (`--params`), applies `--set key.path=value` overrides, and calls
one recipe function with the typed config. Recipes write only under the folders named in the
`paths:` section, so DVC can track them as stage outputs; the command holds a lock on each of
them while the recipe runs (avatar_core.pipeline.locks), so a second writer refuses to start.

Whatever goes wrong, the command prints one line per problem, `error: <key path or file:line>:
<reason>`, to stderr and exits non-zero (2: the configuration, 1: anything else, 130: interrupted);
a Python traceback is shown only with `--debug` (or AVATAR_DEBUG=1, for commands run by DVC).
When AVATAR_ERROR_FILE names a file, the same lines are appended to it: that is how a Prefect task
running the stage through DVC puts them in its own log.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable

from avatar_core.config import STAGES, AvatarConfig, ConfigError, check_inputs, load_config

ERROR_FILE_ENV = "AVATAR_ERROR_FILE"
# Exceptions the code raises on purpose for bad input or a bad state, with a message that says
# what and where; the message of any other exception is printed with its type.
EXPECTED_ERRORS = (ValueError, OSError, RuntimeError)

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
        p.add_argument(
            "--debug", action="store_true", help="show the Python traceback of an error (also AVATAR_DEBUG=1)"
        )
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


def error_lines(err: BaseException) -> list[tuple[str, str]]:
    """(where, reason) per problem of an exception: a key path or file (and line), and why."""
    if isinstance(err, ConfigError):
        return err.problems
    path = getattr(err, "path", None)
    if isinstance(path, str) and hasattr(err, "reason"):  # MediaError, LockError
        return [(path, str(err.reason))]
    if isinstance(err, OSError) and err.filename and err.strerror:
        return [(str(err.filename), err.strerror)]
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    os_error = re.search(r"\(os error (\d+)\)", text)  # what Rust writers (safetensors) raise
    if os_error:
        return [("", f"{text} ({errno.errorcode.get(int(os_error.group(1)), 'errno')}; a file write failed)")]
    if not isinstance(err, EXPECTED_ERRORS):
        text = f"{type(err).__name__}: {text} (--debug shows where it was raised)"
    return [("", text or type(err).__name__)]


def report(problems: list[tuple[str, str]]) -> list[str]:
    """Print one `error: where: reason` line per problem to stderr (and AVATAR_ERROR_FILE)."""
    lines = []
    for where, reason in problems:
        reason = " ".join(reason.split())  # one line, whatever the message held
        lines.append(f"error: {where}: {reason}" if where else f"error: {reason}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    if os.environ.get(ERROR_FILE_ENV):
        try:
            with open(os.environ[ERROR_FILE_ENV], "a", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in lines))
        except OSError:
            pass  # the lines are on stderr already
    return lines


def _preset(args: argparse.Namespace) -> int:
    from avatar_core.presets import apply_preset, preset_names

    if args.list or not args.name:
        print("\n".join(preset_names()))
        return 0 if args.list else 2
    apply_preset(args.name, args.params)  # a ConfigError is reported like any other
    print(f"preset {args.name} merged into {args.params}")
    return 0


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if args.command == "preset":
        return _preset(args)
    cfg: AvatarConfig = load_config(args.params, args.overrides)
    check_inputs(cfg, args.command)
    from avatar_core.pipeline.launch import launched, relaunch

    if args.command in ("sft", "rl") and cfg.distributed.num_processes > 1 and not launched():
        return relaunch(cfg, list(sys.argv[1:] if argv is None else argv))  # under accelerate launch
    from avatar_core.pipeline.locks import is_primary_process, stage_lock
    from avatar_core.recipes.common import set_threads

    set_threads(cfg.num_threads)
    kwargs: dict[str, object] = {"progress": not args.no_progress}
    stage = args.stage if args.command == "rl" else None
    if stage:
        kwargs["stage"] = stage
    cell = None
    if args.command == "ablate":
        if not args.summary and None in (args.setting, args.variant, args.seed):
            report([("--setting, --variant, --seed", "give all three for one cell, or --summary")])
            return 2
        kwargs.update(setting=args.setting, variant=args.variant, seed=args.seed, summary=args.summary)
        if not args.summary:
            from avatar_core.recipes.ablation import cell_name

            cell = cell_name(args.setting, args.variant, args.seed)
    recipe = _recipe(args.command)
    if not is_primary_process():  # other ranks of a multi-process launch never write outputs
        recipe(cfg, **kwargs)
        return 0
    with stage_lock(cfg, args.command, stage, cell):
        recipe(cfg, **kwargs)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("AVATAR_DEBUG", "") not in ("", "0")
    try:
        return run(args, argv)
    except KeyboardInterrupt:
        report([("", "interrupted")])
        return 130
    except Exception as err:
        if debug:
            traceback.print_exc()
        report(error_lines(err))
        return 2 if isinstance(err, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
