"""Bad inputs to the objectives: each error names the function, argument and value or shape."""

from __future__ import annotations

import math

import pytest
import torch

from avatar_core.algos import ObjectiveParams, compute_objective, per_token_loss, token_coefficients

LOGP = torch.zeros(2, 3)
MASK = torch.ones(2, 3)
ADV = torch.tensor([1.0, -1.0])


def test_unknown_loss_type_lists_valid_names():
    with pytest.raises(
        ValueError, match=r"loss_type: unknown loss type 'ppo'; valid names: grpo, bnpo, dapo, dr_grpo"
    ):
        ObjectiveParams(loss_type="ppo")


def test_unknown_objective_lists_valid_names():
    with pytest.raises(KeyError, match=r"unknown objective 'ppo'; valid names: avatar, grpo"):
        compute_objective("ppo", LOGP, LOGP, ADV, MASK, ObjectiveParams())
    with pytest.raises(KeyError, match=r"unknown objective 'ppo'; valid names: avatar, grpo"):
        token_coefficients(MASK, ObjectiveParams(), objective="ppo")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["grpo", "avatar"])
def test_non_finite_advantages(bad, name):
    adv = torch.tensor([0.5, bad])
    with pytest.raises(ValueError, match=rf"{name}: advantages must be finite, got {bad} at index 1"):
        compute_objective(name, LOGP, LOGP, adv, MASK, ObjectiveParams())
    with pytest.raises(ValueError, match=r"avatar: advantages must be finite"):
        per_token_loss(LOGP, LOGP, adv, MASK, ObjectiveParams())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"behaviour_logp": torch.zeros(2, 4)}, r"behaviour_logp has shape \(2, 4\), expected \(2, 3\)"),
        ({"mask": torch.ones(3, 3)}, r"mask has shape \(3, 3\), expected \(2, 3\)"),
        ({"advantages": torch.ones(3)}, r"advantages has shape \(3,\), expected \(2,\)"),
        ({"advantages": torch.ones(2, 1)}, r"advantages has shape \(2, 1\), expected \(2,\)"),
        ({"ref_logp": torch.zeros(2, 2)}, r"ref_logp has shape \(2, 2\), expected \(2, 3\)"),
        ({"is_replay": torch.zeros(5, dtype=torch.bool)}, r"is_replay has shape \(5,\), expected \(2,\)"),
        ({"is_replay": torch.zeros(2)}, r"is_replay must have dtype torch.bool, got torch.float32"),
        ({"group_ids": torch.zeros(4, dtype=torch.long)}, r"group_ids has shape \(4,\), expected \(2,\)"),
        ({"logp": torch.zeros(6)}, r"logp must be 2-D \[B, L\], got shape \(6,\)"),
        ({"mask": torch.full((2, 3), 0.5)}, r"mask must hold only 0 and 1, got 0.5 at index \(0, 0\)"),
    ],
)
def test_shape_mismatch_names_the_argument(kwargs, message):
    args = {
        "logp": LOGP, "behaviour_logp": LOGP, "advantages": ADV, "mask": MASK, "ref_logp": None,
        "is_replay": None, "group_ids": None,
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_objective(
            "avatar", args["logp"], args["behaviour_logp"], args["advantages"], args["mask"], ObjectiveParams(),
            ref_logp=args["ref_logp"], is_replay=args["is_replay"], group_ids=args["group_ids"],
        )  # fmt: skip


def test_tas_weights_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"avatar: tas_w has shape \(2, 2\), expected \(2, 3\)"):
        per_token_loss(LOGP, LOGP, ADV, MASK, ObjectiveParams(), tas_w=torch.ones(2, 2))


def test_beta_without_reference():
    with pytest.raises(ValueError, match=r"grpo: ref_logp is required when beta > 0 \(beta = 0.1\)"):
        compute_objective("grpo", LOGP, LOGP, ADV, MASK, ObjectiveParams(beta=0.1))


def test_params_must_be_objective_params():
    with pytest.raises(TypeError, match="params must be an ObjectiveParams, got dict"):
        compute_objective("grpo", LOGP, LOGP, ADV, MASK, {"loss_type": "grpo"})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eps_low", 1.0, r"eps_low must be a finite number in \[0.0, 1.0\), got 1.0"),
        ("eps_low", -0.1, r"eps_low must be a finite number in \[0.0, 1.0\)"),
        ("eps_high", math.nan, r"eps_high must be a finite number >= 0.0, got nan"),
        ("beta", -0.1, r"beta must be a finite number >= 0.0, got -0.1"),
        ("alpha", math.inf, r"alpha must be a finite number >= 0.0, got inf"),
        ("tas_lambda", -1.0, r"tas_lambda must be a finite number >= 0.0"),
        ("rho_max", 0.0, r"rho_max must be > 0 \(inf: no truncation\), got 0.0"),
        ("max_len", 0, r"max_len must be a positive integer or None, got 0"),
        ("max_len", 2.5, r"max_len must be a positive integer or None, got 2.5"),
        ("num_items", math.nan, r"num_items must be a finite number > 0 or None, got nan"),
        ("num_items", 0.0, r"num_items must be a finite number > 0 or None, got 0.0"),
    ],
)
def test_bad_params_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=rf"ObjectiveParams\.{message}"):
        ObjectiveParams(**{field: value})


def test_params_are_frozen_and_default_to_the_paper():
    params = ObjectiveParams()
    assert (params.eps_low, params.eps_high, params.alpha, params.rho_max) == (0.2, 0.2, 1.0, 2.0)
    with pytest.raises(AttributeError):
        params.beta = 0.5  # type: ignore[misc]
