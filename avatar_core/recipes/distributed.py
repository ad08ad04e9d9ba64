"""Training processes: one, several with replicated weights, or several with FSDP2 sharding.

`Distributed.setup(cfg.distributed)` reads the process group `accelerate launch` made (a single
process when not launched) and the sharding mode; `prepare(bundle)` puts the model on its
device and, with `sharding: fsdp2`, shards it with `torch.distributed.fsdp.fully_shard`:

- each text decoder layer is one FSDP unit, and the inner model (embeddings, final norm, the
  vision and audio encoders) is the root unit: gathered once per forward, so a process whose
  batch has no clip still runs the same collectives as one whose batch has (unused parameters
  reduce-scatter zeros);
- the output layer (`lm_head`, and the embedding tied to it) is left out of FSDP and replicated:
  the fused loss kernel reads its weight directly, outside any module forward, where FSDP would
  hold only a shard. Its gradient is all-reduced like the replicated mode's (a 7B model's head is
  1.1 GB in bf16 per process; with LoRA it is frozen and costs only that).

Replicated mode (the default, for small models) keeps every weight on every process and
all-reduces gradients explicitly after backward; rollouts and the loss call the model directly,
so it is not wrapped in DDP.

Run checkpoints under sharding hold each process's own shards (`model_state` /
`load_model_state`), so resuming needs the same number of processes; the stage's final model is
gathered into full tensors (`full_state`) and written by process 0 as an ordinary checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def _is_dtensor(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def local(t: torch.Tensor) -> torch.Tensor:
    """The process's own part of a sharded tensor; a plain tensor unchanged."""
    return t.to_local() if _is_dtensor(t) else t


@dataclass
class Distributed:
    """The process group as the training loops see it."""

    rank: int = 0
    world: int = 1
    sharding: str = "replicated"
    reshard_after_forward: bool = True
    local_rank: int = 0
    gather_for_rollout: bool = True

    @classmethod
    def setup(cls, dcfg: Any = None) -> Distributed:
        """Join the process group of `accelerate launch` (gloo on CPU, NCCL on GPUs)."""
        from accelerate import PartialState

        launched_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        if launched_fsdp and os.environ.get("FSDP_VERSION", "1") != "2":
            raise ValueError(
                "accelerate launch asks for FSDP version 1; this package shards with FSDP2 "
                "(fully_shard): set fsdp_version: 2 in the accelerate config"
            )
        state = PartialState(cpu=not torch.cuda.is_available())
        sharding = dcfg.sharding if dcfg is not None else ("fsdp2" if launched_fsdp else "replicated")
        if launched_fsdp and sharding != "fsdp2":
            raise ValueError(
                "accelerate launch was given an FSDP config but params.yaml distributed.sharding is "
                f"{sharding!r}: set distributed.sharding: fsdp2 (or launch without the FSDP config)"
            )
        if dcfg is not None and state.num_processes != dcfg.num_processes:
            raise ValueError(
                f"{state.num_processes} processes were launched but params.yaml "
                f"distributed.num_processes is {dcfg.num_processes}: set it to {state.num_processes}"
            )
        reshard = dcfg.reshard_after_forward if dcfg is not None else True
        gather = dcfg.gather_for_rollout if dcfg is not None else True
        return cls(
            state.process_index, state.num_processes, sharding, reshard, state.local_process_index, gather
        )

    @property
    def sharded(self) -> bool:
        return self.sharding == "fsdp2"

    @property
    def device(self) -> torch.device:
        return torch.device(f"cuda:{self.local_rank}") if torch.cuda.is_available() else torch.device("cpu")

    # ------------------------------------------------------------------ collectives

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def gather_floats(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        gathered: list[list[float]] = [[] for _ in range(self.world)]
        torch.distributed.all_gather_object(gathered, values)
        return [v for part in gathered for v in part]

    def parameter_divergence(self, model: nn.Module) -> float:
        """Largest difference between processes of a float64 checksum of the replicated parameters
        (all of them in replicated mode, the output layer under FSDP2); 0 means in sync."""
        if self.world == 1:
            return 0.0
        with torch.no_grad():
            checksum = sum(
                float(p.detach().double().sum() + p.detach().double().square().sum())
                for p in model.parameters()
                if not _is_dtensor(p)
            )
        values = self.gather_floats([checksum])
        return max(values) - min(values)

    def average_gradients(self, model: nn.Module) -> None:
        """All-reduce the gradients of replicated parameters as one flat buffer, divided by the
        world size (FSDP2 reduce-scatters the sharded ones itself)."""
        if self.world == 1:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None and not _is_dtensor(p)]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # [P]
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def clip_grad_norm_(self, model: nn.Module, max_norm: float) -> float:
        """Clip all gradients to a global L2 norm of `max_norm`; returns the norm before clipping.

        Sharded gradients contribute their local squares summed over processes, replicated ones
        their squares once, so the norm equals the unsharded model's.
        """
        sharded, replicated = [], []
        for p in model.parameters():
            if p.grad is not None:
                (sharded if _is_dtensor(p.grad) else replicated).append(p.grad)
        if not sharded:  # every gradient whole on every process: torch's own clipping
            params = [p for p in model.parameters() if p.grad is not None]
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        device = self.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        for g in sharded:
            total += local(g).double().square().sum().to(device)
        if self.world > 1:
            torch.distributed.all_reduce(total)
        for g in replicated:
            total += g.double().square().sum().to(device)
        norm = float(total.sqrt())
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            with torch.no_grad():
                for g in sharded + replicated:
                    g.mul_(coef)
        return norm

    # ------------------------------------------------------------------ model placement

    def prepare(self, bundle: Any, trainable: bool = True) -> None:
        """Move the policy to this process's device and shard it when configured."""
        model = bundle.model
        if self.device.type != "cpu":
            model.to(self.device)
        if not self.sharded:
            return
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.device.type, (self.world,))
        hf_model = bundle.unwrapped()
        inner = getattr(hf_model, hf_model.base_model_prefix)
        head = hf_model.get_output_embeddings()
        ignored = set(head.parameters()) if head is not None else set()
        layers = [m for m in inner.modules() if type(m).__name__.endswith("DecoderLayer")]
        if not layers:
            raise ValueError(f"{type(hf_model).__name__}: no decoder layers found to shard")
        for layer in layers:
            fully_shard(
                layer, mesh=mesh, reshard_after_forward=self.reshard_after_forward, ignored_params=ignored
            )
        root = fully_shard(inner, mesh=mesh, ignored_params=ignored)
        root.set_reduce_scatter_unused_params(True)
        bundle.fsdp_units = [*layers, inner]
        log.info(
            "FSDP2 over %d processes: %d decoder layers + the inner model sharded, output layer replicated%s",
            self.world,
            len(layers),
            "" if trainable else " (frozen reference)",
        )

    @contextlib.contextmanager
    def gathered(self, bundle: Any) -> Iterator[None]:
        """Keep the shards gathered for a stretch of forwards (rollouts), then free them: every
        unit with `gather_for_rollout`, else the inner model only (decoder layers then gather
        in each forward, and `generate_rollouts(synced=True)` keeps the processes in step)."""
        units = getattr(bundle, "fsdp_units", None)
        if not self.sharded or not units:
            yield
            return
        if not self.gather_for_rollout:
            units = units[-1:]  # the inner model (encoders, embeddings) is the last unit
        # Gathered up front: transformers' generation calls the vision and audio encoders from
        # the outer model's forward, before the inner model's own forward would gather them.
        for unit in reversed(units):
            unit.set_reshard_after_forward(False, recurse=False)
            unit.unshard()
        try:
            yield
        finally:
            for unit in units[:-1]:
                unit.set_reshard_after_forward(self.reshard_after_forward, recurse=False)
            units[-1].set_reshard_after_forward(False, recurse=False)  # the root's own default
            for unit in units:
                unit.reshard()

    # ------------------------------------------------------------------ checkpoint state

    def model_state(self, model: nn.Module, trainable_only: bool) -> dict[str, torch.Tensor]:
        """What a run checkpoint stores of the weights on this process (own shards when sharded)."""
        if trainable_only:
            items = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        else:
            items = list(model.state_dict().items())
        return {name: local(t).detach().cpu().clone() for name, t in items}

    def load_model_state(
        self, model: nn.Module, state: dict[str, torch.Tensor], trainable_only: bool
    ) -> None:
        """Copy a `model_state` back into the live (possibly sharded) model, strictly by name."""
        live = self.model_state_refs(model, trainable_only)
        missing, unexpected = sorted(set(live) - set(state)), sorted(set(state) - set(live))
        if missing or unexpected:
            raise ValueError(
                f"run checkpoint does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]} "
                "(was model.lora or the model changed since it was written?)"
            )
        with torch.no_grad():
            for name, target in live.items():
                local(target).copy_(state[name])

    def model_state_refs(self, model: nn.Module, trainable_only: bool) -> dict[str, torch.Tensor]:
        if trainable_only:
            return {n: p for n, p in model.named_parameters() if p.requires_grad}
        return dict(model.state_dict(keep_vars=True))

    def full_state(self, model: nn.Module, trainable_only: bool) -> dict[str, torch.Tensor] | None:
        """Full tensors of the (trainable) weights for saving: collective under FSDP2, where
        process 0 gets them and the others None; None in replicated mode (the model has them)."""
        if not self.sharded:
            return None
        refs = self.model_state_refs(model, trainable_only)
        full = {}
        for name, t in refs.items():
            value = t.full_tensor() if _is_dtensor(t) else t
            if self.rank == 0:
                full[name] = value.detach().cpu().clone()
        return full if self.rank == 0 else None


def optimizer_state_from_local(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> dict[str, Any]:
    """Turn the local tensors of a saved optimizer state back into shards of their parameters."""
    from torch.distributed.tensor import DTensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    out_state = {}
    for index, entry in state["state"].items():
        param = params[int(index)]
        if not _is_dtensor(param):
            out_state[index] = entry
            continue
        out_state[index] = {
            key: DTensor.from_local(
                value.to(param.device),
                param.device_mesh,
                param.placements,
                shape=param.shape,
                stride=param.stride(),
            )
            if isinstance(value, torch.Tensor) and value.dim() > 0
            else value
            for key, value in entry.items()
        }
    return {**state, "state": out_state}
