"""Run and inspect the stages of dvc.yaml through DVC's Python API.

DVC owns the pipeline graph and the provenance (dvc.lock); the Prefect tasks in `tasks/` call
these functions so that `prefect deployment run avatar/full-curriculum` and `dvc repro` run the same
commands and skip the same up-to-date stages. Two measured constraints shape the code:

- the API must run with the repository as the working directory, otherwise stages fail with
  StagePathOutsideError, so every call enters `_inside(root)`; the working directory is
  process-wide, so stages run one at a time (DVC's repo lock enforces that anyway);
- `Repo.reproduce(targets=[name], single_item=True)` returns the stages it ran, `[]` when the
  stage is up to date, which is how a task reports "ran" versus "up to date".

`dvc` is imported inside the functions so that importing avatar_core stays free of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc.repo import Repo


class PipelineError(RuntimeError):
    """A stage or repository problem, with the stage name or path in the message."""


@dataclass(frozen=True)
class StageRun:
    """What running one stage did: `ran` lists the stages DVC executed (empty: up to date)."""

    name: str
    ran: tuple[str, ...]
    seconds: float

    @property
    def up_to_date(self) -> bool:
        return not self.ran


def find_root(path: str | Path = ".") -> Path:
    """The DVC repository root at or above `path` (the folder holding `.dvc/`)."""
    start = Path(path).resolve()
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    raise PipelineError(f"no DVC repository (.dvc/ folder) at or above {start}")


@contextmanager
def _inside(root: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def open_repo(root: str | Path) -> Iterator[Repo]:
    """Open the DVC repository at `root` with `root` as the working directory."""
    from dvc.repo import Repo

    resolved = find_root(root)
    with _inside(resolved), Repo(".") as repo:
        yield repo


def stage_names(root: str | Path) -> list[str]:
    """Every stage of dvc.yaml in graph order, foreach stages expanded (`rl@s1`, ...)."""
    import networkx as nx

    with open_repo(root) as repo:
        graph = repo.index.graph
        # networkx edges point from a stage to the stages it depends on; reverse for run order.
        return [stage.addressing for stage in reversed(list(nx.topological_sort(graph)))]


def _names(repo: Repo) -> set[str]:
    return {stage.addressing for stage in repo.index.stages}


def _check_stage(repo: Repo, name: str) -> None:
    known = _names(repo)
    if name not in known:
        raise PipelineError(f"unknown DVC stage {name!r}; stages in dvc.yaml: {', '.join(sorted(known))}")


def reproduce_stage(root: str | Path, name: str, force: bool = False) -> StageRun:
    """Run one stage of dvc.yaml (only that stage: its upstream must be up to date or present).

    force=True reruns it even when DVC considers it up to date (the nightly re-evaluation).
    """
    import time

    from dvc.exceptions import DvcException

    start = time.perf_counter()
    with open_repo(root) as repo:
        _check_stage(repo, name)
        try:
            stages = repo.reproduce(targets=[name], single_item=True, force=force)
        except DvcException as err:
            raise PipelineError(f"DVC stage {name!r} failed: {err}") from err
        ran = tuple(stage.addressing for stage in stages)
    return StageRun(name=name, ran=ran, seconds=time.perf_counter() - start)


def stage_status(root: str | Path, name: str) -> dict[str, object]:
    """DVC's status of one stage: `{}` when up to date, else what changed."""
    with open_repo(root) as repo:
        _check_stage(repo, name)
        return repo.status(targets=[name])


def git_tracked_outputs(root: str | Path) -> list[str]:
    """Outputs git keeps (metrics, plots and `cache: false` outs), relative to the repo root."""
    with open_repo(root) as repo:
        paths = {out.def_path for stage in repo.index.stages for out in stage.outs if not out.use_cache}
    return sorted(paths)


def commit_stages(root: str | Path, names: list[str]) -> None:
    """Record in dvc.lock the outputs of stages that ran outside DVC (`dvc commit --force`).

    The ablation flow runs its cells as concurrent processes, which DVC cannot (one process holds
    the repository lock); committing afterwards records exactly what `dvc repro` would have, from
    the same command, deps and params, so the summary and later `dvc repro` see them up to date.
    """
    from dvc.exceptions import DvcException

    with open_repo(root) as repo:
        for name in names:
            _check_stage(repo, name)
        try:
            for name in names:  # Repo.commit takes one target at a time
                repo.commit(name, force=True)
        except DvcException as err:
            raise PipelineError(f"dvc commit of {', '.join(names)} failed: {err}") from err
