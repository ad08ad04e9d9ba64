"""Bad inputs raise errors that name the tensor, its shape and what was expected."""

from __future__ import annotations

import pytest
import torch
from kernel_cases import make_case

from avatar_core.algos.params import ObjectiveParams
from avatar_core.kernels.fused_loss import fused_objective
from avatar_core.kernels.reference import reference_objective

PARAMS = ObjectiveParams()


def _call(fn, case, **overrides):
    args = dict(
        hidden=case.hidden,
        lm_head_weight=case.weight,
        completion_ids=case.ids,
        mask=case.mask,
        behaviour_logp=case.behaviour_logp,
        advantages=case.advantages,
    )
    kwargs = {k: overrides.pop(k) for k in list(overrides) if k not in args}
    args.update(overrides)
    return fn(*args.values(), PARAMS, **kwargs)


BAD_SHAPES = [
    ({"hidden": torch.zeros(2, 5)}, r"hidden must be \[B, L, H\], got shape \(2, 5\)"),
    ({"lm_head_weight": torch.zeros(20, 7)}, r"lm_head_weight has shape \(20, 7\) but hidden has H=8"),
    ({"lm_head_weight": torch.zeros(20)}, r"lm_head_weight must be \[V, H\], got shape \(20,\)"),
    (
        {"completion_ids": torch.zeros(2, 4, dtype=torch.long)},
        r"completion_ids has shape \(2, 4\), expected \(2, 5\)",
    ),
    ({"mask": torch.ones(3, 5)}, r"mask has shape \(3, 5\), expected \(2, 5\)"),
    ({"behaviour_logp": torch.zeros(2, 6)}, r"behaviour_logp has shape \(2, 6\), expected \(2, 5\)"),
    ({"advantages": torch.zeros(3)}, r"advantages has shape \(3,\), expected \(2,\)"),
    ({"ref_logp": torch.zeros(5, 2)}, r"ref_logp has shape \(5, 2\), expected \(2, 5\)"),
    ({"is_replay": torch.zeros(4, dtype=torch.bool)}, r"is_replay has shape \(4,\), expected \(2,\)"),
    ({"group_ids": torch.zeros(1)}, r"group_ids has shape \(1,\), expected \(2,\)"),
    ({"lm_head_bias": torch.zeros(19)}, r"lm_head_bias has shape \(19,\), expected \(20,\)"),
    (
        {"completion_ids": torch.full((2, 5), 20)},
        r"completion_ids must lie in \[0, 20\).*got range \[20, 20\]",
    ),
    (
        {"completion_ids": torch.zeros(2, 5)},
        r"completion_ids must be an integer tensor, got dtype torch.float32",
    ),
    (
        {"hidden": torch.zeros(2, 5, 8, dtype=torch.float64)},
        r"hidden has dtype torch.float64 but lm_head_weight",
    ),
    ({"temperature": 0.0}, r"temperature must be > 0, got 0.0"),
]


@pytest.mark.parametrize("fn", [fused_objective, reference_objective], ids=["fused", "reference"])
@pytest.mark.parametrize(
    ("override", "message"), BAD_SHAPES, ids=[f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(BAD_SHAPES)]
)
def test_bad_inputs_are_named(fn, override, message):
    case = make_case(2, 5, 8, 20, seed=0)
    where = "fused_objective" if fn is fused_objective else "reference_objective"
    with pytest.raises(ValueError, match=rf"{where}: {message}"):
        _call(fn, case, **override)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token_chunk": 0}, "token_chunk must be a positive integer, got 0"),
        ({"token_chunk": 2.5}, "token_chunk must be a positive integer, got 2.5"),
        ({"vocab_chunk": -1}, "vocab_chunk must be a positive integer or None, got -1"),
        ({"backend": "cuda"}, "unknown backend 'cuda'; valid names: auto, eager, compile"),
    ],
)
def test_bad_chunking_is_named(kwargs, message):
    case = make_case(2, 5, 8, 20, seed=0)
    with pytest.raises(ValueError, match=message):
        _call(fused_objective, case, **kwargs)


def test_unknown_objective_lists_valid_names():
    case = make_case(2, 5, 8, 20, seed=0)
    with pytest.raises(KeyError, match="unknown objective 'ppo'; valid names: avatar, grpo"):
        _call(fused_objective, case, objective="ppo")


def test_missing_reference_with_beta_is_reported_by_the_objective():
    case = make_case(2, 5, 8, 20, seed=0)
    with pytest.raises(ValueError, match=r"ref_logp is required when beta > 0"):
        fused_objective(*case.args(), ObjectiveParams(beta=0.1))
