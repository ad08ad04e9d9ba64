"""Run the doctests of every rewards module (the global pytest options stay unchanged)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "avatar_core.rewards.parsing",
    "avatar_core.rewards.judge",
    "avatar_core.rewards.functions",
    "avatar_core.rewards.combine",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctest"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_every_public_reward_has_a_doctest() -> None:
    from avatar_core.rewards import accuracy_reward, format_reward, make_judge_reward, self_reward

    for fn in (format_reward, accuracy_reward, self_reward, make_judge_reward):
        assert ">>>" in (fn.__doc__ or ""), fn.__name__
