"""`python -m avatar_core.evaluation.lm_eval_tasks [lm-eval arguments]`: lm-eval's own command line
with `--model avatar` registered and `TASKS_DIR` as the include path (unless one is given).

lm-eval 0.4.13 looks models up only among modules already imported (it has no plugin entry
points), so the bare `lm_eval` command does not know `avatar`; this entry point imports
`avatar_core.evaluation.lm_eval_model` first, then hands every argument to lm-eval unchanged:

    python -m avatar_core.evaluation.lm_eval_tasks --model avatar \\
        --model_args pretrained=checkpoints/rl/s3/model --tasks avatar_synth
"""

from __future__ import annotations

import sys

from avatar_core.evaluation.lm_eval_tasks import TASKS_DIR


def main(argv: list[str] | None = None) -> None:
    from lm_eval.__main__ import cli_evaluate

    import avatar_core.evaluation.lm_eval_model  # noqa: F401  (registers --model avatar)

    args = list(sys.argv[1:] if argv is None else argv)
    wants_help = not args or args[0] in ("-h", "--help")
    if not wants_help and not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        args += ["--include_path", TASKS_DIR]
    sys.argv = ["lm_eval", *args]
    cli_evaluate()


if __name__ == "__main__":
    main()
