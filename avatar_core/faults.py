"""Named fault points: deterministic kills, I/O errors and NaN losses for the fault-injection suite.

The code that writes checkpoints and stage outputs calls `fault_point(name)` at the places where a
crash hurts most (between the files of one checkpoint, between the two renames that publish it,
between a stage's model and its done marker), and the training loops pass their loss through
`poisoned(name, value)`. Nothing happens unless the environment variable `AVATAR_FAULTS` arms a
point, as a comma-separated list of `name[#hits]=action`:

- `hits` picks which arrivals at the point act: `3` (the third), `2-4`, `2-` (the second and
  every later one); without it, the first.
- `kill`: SIGKILL to this process, as from `kill -9` or the OOM killer (nothing is flushed).
- `stop`: SIGSTOP to this process: it hangs right there, alive, until someone continues or kills
  it (how a test stops a whole pipeline at a known point, then kills what runs it).
- `enospc`: raise OSError(ENOSPC) as a full disk does; `path` names the file being written.
- `nan`: `poisoned` returns NaN instead of its value (a diverged loss); other points ignore it.

Example: `AVATAR_FAULTS="checkpoint.model_saved#2=kill"` kills the process inside its second
checkpoint write, after the weights and before the trainer state. Arrivals are counted per
process, and the count restarts whenever the variable's value changes. Unset, each call costs one
environment lookup. tests/faults/ drives every point; the point names are listed in `POINTS`.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter
from pathlib import Path

ENV = "AVATAR_FAULTS"
ACTIONS = ("kill", "stop", "enospc", "nan")
POINTS = {
    "checkpoint.model_saved": "run state: weights written, trainer state not yet",
    "checkpoint.trainer_saved": "run state: weights and trainer state written, replay buffer not yet",
    "checkpoint.files_saved": "run state: every file in the .tmp folder, not yet renamed into place",
    "checkpoint.write": "run state: a file of the checkpoint is being written (enospc: a full disk)",
    "commit.between_renames": "publishing a folder: the old copy moved aside, the new one not yet in place",
    "sft.step_done": "SFT: a step applied and logged, its checkpoint not yet written",
    "rl.step_done": "RL: a step applied and logged, its checkpoint not yet written",
    "output.model_saved": "stage output: the model written to the .tmp folder, done.json not yet",
    "output.metrics_published": "stage output: metrics published, the output folder not yet renamed into place",
    "sft.loss": "SFT: the loss of a step (nan: a diverged step)",
    "rl.loss": "RL: the loss of a step (nan: a diverged step)",
}

_state: dict[str, object] = {"spec": None, "armed": {}, "hits": Counter()}


def _parse(spec: str) -> dict[str, list[tuple[int, int | None, str]]]:
    armed: dict[str, list[tuple[int, int | None, str]]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        target, _, action = entry.partition("=")
        name, _, hits = target.partition("#")
        if name not in POINTS or action not in ACTIONS:
            raise ValueError(
                f"{ENV}: {entry!r} must be point[#hits]=action with a point from "
                f"{', '.join(POINTS)} and an action from {', '.join(ACTIONS)}"
            )
        first, dash, last = (hits or "1").partition("-")
        upper = None if (dash and not last) else int(last or first)
        armed.setdefault(name, []).append((int(first), upper, action))
    return armed


def _action(name: str) -> str | None:
    spec = os.environ.get(ENV, "")
    if spec != _state["spec"]:
        _state.update(spec=spec, armed=_parse(spec) if spec else {}, hits=Counter())
    armed = _state["armed"]
    if name not in armed:  # type: ignore[operator]
        return None
    hits: Counter = _state["hits"]  # type: ignore[assignment]
    hits[name] += 1
    for first, last, action in armed[name]:  # type: ignore[index]
        if hits[name] >= first and (last is None or hits[name] <= last):
            return action
    return None


def fault_point(name: str, path: str | Path | None = None) -> None:
    """Kill or stop the process, or raise ENOSPC, if `AVATAR_FAULTS` arms this arrival at `name`."""
    action = _action(name)
    if action in ("kill", "stop"):
        os.kill(os.getpid(), signal.SIGKILL if action == "kill" else signal.SIGSTOP)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path) if path is not None else None)


def poisoned(name: str, value):
    """`value`, or `value * NaN` if `AVATAR_FAULTS` arms this arrival at `name` with `nan`."""
    return value * float("nan") if _action(name) == "nan" else value
