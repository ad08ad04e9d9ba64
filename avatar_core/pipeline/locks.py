"""One writer per stage: an advisory lock on each folder a stage writes (`runs/<stage>` and its outputs).

`dvc repro` killed with SIGKILL leaves its `avatar` child running, and a rerun would start a second
process writing the same checkpoints. `stage_lock` stops that: before a stage runs, the command
takes an exclusive `flock` on `<folder>.lock` beside each folder the stage writes (its run state
and its DVC outputs); a second writer finds the lock held, reads who holds it from the file and
refuses with a `LockError` naming the holder's PID and command. The kernel drops a flock when its
process dies however it dies, so a lock file left by a dead process is simply taken over (and
logged); a PID that the system has since reused cannot fool it, since the PID is only reported.
Lock files sit beside the folders, like the `.tmp`/`.old` siblings of an atomic checkpoint write,
and are removed when the stage ends. flock is local to one machine: on a shared network file
system two machines are not kept apart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from avatar_core.config import AvatarConfig

log = logging.getLogger(__name__)


class LockError(RuntimeError):
    """The folder a stage writes is held by another live process; `path` names the folder."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def lock_file(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder.with_name(folder.name + ".lock")


def stage_folders(
    cfg: AvatarConfig, command: str, stage: str | None = None, cell: str | None = None
) -> list[Path]:
    """The folders command `command` (an `avatar` subcommand) writes, run state first; `stage` is
    the RL stage of `rl`, `cell` the ablation cell of `ablate` (None: the study's summary)."""
    p = cfg.paths
    runs, metrics = Path(p.runs_dir), Path(p.metrics_dir)
    if command == "ablate":
        ablation = Path(p.ablation_dir)
        return [runs / "ablation" / cell, ablation / "cells" / cell] if cell else [ablation]
    folders = {
        "ingest": [Path(p.data_dir), Path(p.model_dir)],
        "hints": [Path(p.hints_dir)],
        "sft": [runs / "sft", Path(p.sft_dir), metrics / "sft"],
        "evaluate": [Path(p.eval_dir)],
        "history": [Path(p.eval_dir).parent / "history"],
    }
    if command == "rl":
        return [runs / str(stage), Path(p.rl_dir) / str(stage), metrics / str(stage)]
    return folders[command]


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process (it has not written its name yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    host = f" on {holder['host']}" if holder.get("host") else ""
    return f"process {holder.get('pid')} (`{holder.get('command', '?')}`{host}, since {started})"


@contextmanager
def folder_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """Hold `<folder>.lock` exclusively for the duration of the block; LockError if held."""
    path = lock_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockError(
                folder,
                f"another writer holds this stage: {_describe(holder)}; wait for it to finish or "
                f"stop it (kill {holder.get('pid', '<pid>')}), then run again",
            ) from None
        try:  # the previous holder may have removed the file between our open and our flock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_holder(fd)
    if previous:
        log.warning(
            "%s: taking over the lock left by %s, which is no longer running", path, _describe(previous)
        )
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # before unlocking, so no one locks a file that is going away
        os.close(fd)


@contextmanager
def stage_lock(
    cfg: AvatarConfig, command: str, stage: str | None = None, cell: str | None = None
) -> Iterator[list[Path]]:
    """Lock every folder `command` writes (see `stage_folders`); all or none are held."""
    text = " ".join(["avatar", command, *(["--stage", stage] if stage else []), *([cell] if cell else [])])
    with ExitStack() as stack:
        folders = stage_folders(cfg, command, stage, cell)
        held = [stack.enter_context(folder_lock(f, text)) for f in folders]
        yield held


def is_primary_process() -> bool:
    """True unless this is a non-zero rank of a multi-process launch (which never writes outputs)."""
    return os.environ.get("RANK", "0") in ("0", "")


__all__ = ["LockError", "folder_lock", "is_primary_process", "lock_file", "stage_folders", "stage_lock"]
