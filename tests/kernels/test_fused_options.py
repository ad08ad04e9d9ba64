"""The fused kernel equals the reference for every objective option (float32, rel. error <= 1e-5)."""

from __future__ import annotations

import itertools
import math

import pytest
from kernel_cases import assert_matches, make_case, run

from avatar_core.algos.params import LOSS_TYPES, ObjectiveParams
from avatar_core.kernels.fused_loss import fused_objective
from avatar_core.kernels.reference import reference_objective

GRID = list(itertools.product(LOSS_TYPES, ("grpo", "avatar"), (False, True), (0.0, 0.1), (0.0, 0.3)))


@pytest.mark.parametrize(("loss_type", "objective", "replay", "beta", "tas"), GRID)
def test_every_loss_type_and_objective(loss_type, objective, replay, beta, tas):
    case = make_case(4, 10, 12, 50, seed=len(loss_type), ragged=True, replay=replay, ref=beta > 0)
    params = ObjectiveParams(loss_type=loss_type, beta=beta, tas_lambda=tas, alpha=0.7, rho_max=1.1)
    ref = run(reference_objective, case, params, objective=objective)
    fused = run(fused_objective, case, params, objective=objective, token_chunk=6)
    assert_matches(fused, ref, case.mask)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 1.7])
@pytest.mark.parametrize("bias", [False, True])
def test_temperature_and_bias(temperature, bias):
    case = make_case(3, 8, 10, 33, seed=11, temperature=temperature, bias=bias, ref=True, replay=True)
    params = ObjectiveParams(beta=0.1, tas_lambda=0.3)
    ref = run(reference_objective, case, params, temperature=temperature)
    fused = run(fused_objective, case, params, temperature=temperature, token_chunk=5)
    assert_matches(fused, ref, case.mask)
    if bias:
        assert fused["bias"] is not None and fused["bias"].abs().sum() > 0


@pytest.mark.parametrize(
    "params",
    [
        ObjectiveParams(eps_low=0.05, eps_high=0.28),  # asymmetric clipping (DAPO's clip-higher)
        ObjectiveParams(rho_max=math.inf),  # no truncation of replayed ratios
        ObjectiveParams(rho_max=1.01, alpha=2.0),
        ObjectiveParams(alpha=0.0, tas_lambda=1.0),
        ObjectiveParams(loss_type="dr_grpo", max_len=32),
        ObjectiveParams(loss_type="dapo", num_items=123.0),
    ],
    ids=["eps", "rho-inf", "rho-small", "alpha0", "max_len", "num_items"],
)
def test_clip_truncation_and_normaliser_options(params):
    case = make_case(4, 9, 8, 30, seed=21, replay=True, noise=0.6)
    ref = run(reference_objective, case, params)
    fused = run(fused_objective, case, params, token_chunk=7, vocab_chunk=8)
    assert_matches(fused, ref, case.mask)


def test_options_change_the_result():
    """Guards the grid above: the options it varies really move the loss and gradients."""
    case = make_case(4, 9, 8, 30, seed=2, replay=True, ref=True)
    base = run(fused_objective, case, ObjectiveParams(beta=0.0, tas_lambda=0.0, rho_max=math.inf))
    for changed in (
        ObjectiveParams(beta=0.5, tas_lambda=0.0, rho_max=math.inf),
        ObjectiveParams(beta=0.0, tas_lambda=0.5, rho_max=math.inf),
        ObjectiveParams(beta=0.0, tas_lambda=0.0, rho_max=1.001),
        ObjectiveParams(beta=0.0, tas_lambda=0.0, rho_max=math.inf, loss_type="bnpo"),
    ):
        other = run(fused_objective, case, changed)
        assert (other["weight"] - base["weight"]).abs().max() > 1e-6, changed


def test_stats_are_those_of_compute_objective():
    case = make_case(4, 12, 8, 30, seed=8, replay=True, ref=True, noise=0.5)
    params = ObjectiveParams(beta=0.1, tas_lambda=0.3, rho_max=1.2)
    fused = run(fused_objective, case, params, token_chunk=5)
    stats = fused["stats"]
    assert stats["tokens"] == case.mask.sum().item()
    assert stats["replay_tokens"] == (case.mask * case.is_replay[:, None]).sum().item()
    assert 0 < stats["clip_low_frac"] + stats["clip_high_frac"] < 1
    assert stats["zero_adv_group_frac"] == 0.0
    assert abs(stats["loss_on"] + params.alpha * stats["loss_off"] - fused["loss"].item()) < 1e-5
