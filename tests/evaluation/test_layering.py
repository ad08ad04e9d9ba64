"""Evaluation is a component the recipes call, never the reverse: importing every module of
avatar_core.evaluation (the lm-eval adapter and task utils included) must not import a recipe."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import avatar_core.evaluation as evaluation


def test_evaluation_modules_import_no_recipe() -> None:
    modules = [m.name for m in pkgutil.walk_packages(evaluation.__path__, "avatar_core.evaluation.")]
    modules = [m for m in modules if not m.endswith("__main__")]
    assert "avatar_core.evaluation.scoring" in modules and "avatar_core.evaluation.lm_eval_model" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('avatar_core.recipes')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
