"""Gradient plumbing of the fused kernel: which inputs get gradients, gradcheck, precision, memory."""

from __future__ import annotations

import pytest
import torch
from kernel_cases import assert_matches, make_case, rel_err, run
from torch.utils._python_dispatch import TorchDispatchMode

from avatar_core.algos.params import ObjectiveParams
from avatar_core.kernels.fused_loss import fused_objective, select_backend
from avatar_core.kernels.reference import reference_objective

PARAMS = ObjectiveParams(loss_type="grpo", beta=0.1, tas_lambda=0.3)


@pytest.mark.parametrize(
    ("hidden_grad", "weight_grad", "bias_grad"),
    [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (True, True, False),
        (False, False, False),
    ],
)
def test_gradient_flows_only_to_tensors_requiring_grad(hidden_grad, weight_grad, bias_grad):
    case = make_case(3, 6, 8, 20, seed=1, bias=True, ref=True)
    case.hidden.requires_grad_(hidden_grad)
    case.weight.requires_grad_(weight_grad)
    case.bias.requires_grad_(bias_grad)
    fused = run(fused_objective, case, PARAMS, token_chunk=4)
    ref = run(reference_objective, case, PARAMS)
    assert fused["loss"].item() == pytest.approx(ref["loss"].item(), rel=1e-5)
    for name, wanted in (("hidden", hidden_grad), ("weight", weight_grad), ("bias", bias_grad)):
        assert (fused[name] is not None) == wanted, name
        if wanted:
            assert rel_err(fused[name], ref[name]) <= 1e-5
    assert case.behaviour_logp.grad is None and case.advantages.grad is None


def test_no_grad_mode_returns_a_plain_loss():
    case = make_case(2, 5, 8, 20, seed=2, ref=True)
    with torch.no_grad():
        loss, _, logp = fused_objective(*case.args(), PARAMS, ref_logp=case.ref_logp)
    assert not loss.requires_grad and not logp.requires_grad
    ref_loss, _, _ = reference_objective(*case.args(), PARAMS, ref_logp=case.ref_logp)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)


def test_grad_output_scales_the_stored_gradients():
    case = make_case(2, 6, 8, 20, seed=4, ref=True)
    loss, _, _ = fused_objective(*case.args(), PARAMS, ref_logp=case.ref_logp, token_chunk=4)
    (-3.0 * loss).backward()
    fused_grad = case.weight.grad.clone()
    case.weight.grad = None
    ref_loss, _, _ = reference_objective(*case.args(), PARAMS, ref_logp=case.ref_logp)
    (-3.0 * ref_loss).backward()
    assert rel_err(fused_grad, case.weight.grad) <= 1e-5


def test_gradcheck_float64():
    case = make_case(2, 4, 3, 7, seed=9, dtype=torch.float64, bias=True, ref=True, replay=True)
    params = ObjectiveParams(loss_type="bnpo", beta=0.1, tas_lambda=0.3, rho_max=1.5)

    def loss_of(hidden, weight, bias, vocab_chunk):
        loss, _, _ = fused_objective(
            hidden,
            weight,
            *case.args()[2:],
            params,
            **{**case.kwargs(), "lm_head_bias": bias},
            temperature=0.9,
            token_chunk=3,
            vocab_chunk=vocab_chunk,
        )
        return loss

    inputs = (
        case.hidden.detach().requires_grad_(),
        case.weight.detach().requires_grad_(),
        case.bias.detach().requires_grad_(),
    )
    assert torch.autograd.gradcheck(lambda h, w, b: loss_of(h, w, b, None), inputs, eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(lambda h, w, b: loss_of(h, w, b, 3), inputs, eps=1e-6, atol=1e-7)


def test_float64_matches_reference_tightly():
    case = make_case(3, 7, 6, 25, seed=6, dtype=torch.float64, ref=True, replay=True, bias=True)
    ref = run(reference_objective, case, PARAMS, temperature=1.3)
    fused = run(fused_objective, case, PARAMS, temperature=1.3, token_chunk=4, vocab_chunk=6)
    assert_matches(fused, ref, case.mask, tol=1e-12)
    assert fused["logp"].dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("vocab_chunk", [None, 9])
def test_half_precision_inputs_match_the_float32_reference(dtype, vocab_chunk):
    low = make_case(3, 8, 16, 40, seed=7, dtype=dtype, ref=True)
    high = make_case(3, 8, 16, 40, seed=7, dtype=torch.float32, ref=True)
    fused = run(fused_objective, low, PARAMS, token_chunk=5, vocab_chunk=vocab_chunk)
    ref = run(reference_objective, high, PARAMS)
    assert fused["logp"].dtype == torch.float32
    assert fused["hidden"].dtype == dtype and fused["weight"].dtype == dtype
    # Inputs rounded to 8 (bf16) or 11 (fp16) mantissa bits: agreement to a few percent, not 1e-5.
    tol = 3e-2 if dtype == torch.bfloat16 else 5e-3
    assert rel_err(fused["loss"], ref["loss"]) <= tol
    for name in ("hidden", "weight"):
        assert rel_err(fused[name], ref[name]) <= tol, name


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize(("token_chunk", "vocab_chunk"), [(16, None), (16, 250), (32, 100)])
def test_never_materialises_the_full_logits(token_chunk, vocab_chunk):
    B, L, H, V = 2, 48, 8, 1000
    case = make_case(B, L, H, V, seed=3, ragged=False, ref=True)
    with _LargestTensor() as probe:
        loss, _, _ = fused_objective(
            *case.args(), PARAMS, ref_logp=case.ref_logp, token_chunk=token_chunk, vocab_chunk=vocab_chunk
        )
        loss.backward()
    chunk_logits = token_chunk * (vocab_chunk or V)
    assert probe.largest <= max(chunk_logits, V * H, B * L * H)
    assert probe.largest < B * L * V // 4
    with _LargestTensor() as full:
        reference_objective(*case.args(), PARAMS, ref_logp=case.ref_logp)[0].backward()
    assert full.largest == B * L * V  # the probe does see the reference's logits


def test_backend_selection():
    assert select_backend(torch.device("cpu")) == "eager"
    assert select_backend(torch.device("cuda")) == "compile"
    assert select_backend(torch.device("cuda"), "eager") == "eager"
    with pytest.raises(ValueError, match="unknown backend 'triton'; valid names: auto, eager, compile"):
        select_backend(torch.device("cpu"), "triton")


@pytest.mark.slow
def test_compiled_backend_matches_reference_on_cpu():
    case = make_case(3, 9, 16, 64, seed=12, ref=True, replay=True, bias=True)
    ref = run(reference_objective, case, PARAMS, temperature=0.7)
    fused = run(fused_objective, case, PARAMS, temperature=0.7, token_chunk=8, backend="compile")
    assert_matches(fused, ref, case.mask)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("vocab_chunk", [None, 4096])
def test_cuda_auto_backend_matches_reference(vocab_chunk):
    case = make_case(4, 256, 64, 32_000, seed=13, ref=True, replay=True)
    for name in ("hidden", "weight"):
        setattr(case, name, getattr(case, name).detach().cuda().requires_grad_())
    for name in ("ids", "mask", "behaviour_logp", "advantages", "ref_logp", "is_replay", "group_ids"):
        setattr(case, name, getattr(case, name).cuda())
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = run(reference_objective, case, PARAMS)
    fused = run(fused_objective, case, PARAMS, token_chunk=256, vocab_chunk=vocab_chunk)
    assert_matches(fused, ref, case.mask, tol=1e-4)
