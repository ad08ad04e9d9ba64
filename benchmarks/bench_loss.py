"""Benchmark: fused chunked loss vs the full-logits path, peak memory and forward+backward time.

Each (path, hidden size, token count) runs in a fresh subprocess, so the peak memory of one
configuration cannot hide behind another's. On CPU the peak is the process's peak RSS
(`ru_maxrss`; tracemalloc does not see torch's allocations) minus the RSS once the inputs exist,
i.e. the extra memory the loss needs on top of hidden states and LM head; on CUDA it is
`torch.cuda.max_memory_allocated` minus the allocation after the inputs. Time is the median of
`--repeats` forward+backward passes; the peak is that of the first. There is no separate warm-up
pass (each pass at these sizes takes seconds to minutes on CPU, and glibc maps and unmaps
buffers this large on every pass anyway); every pass's time is kept in the JSON. Besides wall time
the CPU time of the process (all its threads) is recorded: on a machine shared with other jobs it
is far less sensitive to contention than wall time, so the time ratio is reported on both.
The full-logits path is skipped where its estimated footprint exceeds `--max-gib`, so a sweep
never pushes a shared machine into the OOM killer.

    python benchmarks/bench_loss.py --tokens 1024 2048 4096 8192 --out benchmarks/results/loss.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VOCAB = 151_936
SEQ_LEN = 512  # tokens per row; B = tokens / SEQ_LEN


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(args: argparse.Namespace) -> dict:
    """Run one configuration in this process and return its measurements."""
    import torch

    from avatar_core.algos.params import ObjectiveParams
    from avatar_core.kernels.fused_loss import fused_objective
    from avatar_core.kernels.reference import reference_objective

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    tokens, hidden_size = args.tokens[0], args.hidden[0]
    rows = max(1, tokens // SEQ_LEN)
    seq = tokens // rows
    hidden = torch.randn(rows, seq, hidden_size, device=device, dtype=dtype, requires_grad=True)  # [B, L, H]
    weight = (torch.randn(args.vocab, hidden_size, device=device) / hidden_size**0.5).to(dtype)  # [V, H]
    weight.requires_grad_(True)
    ids = torch.randint(0, args.vocab, (rows, seq), device=device)  # [B, L]
    mask = torch.ones(rows, seq, device=device)  # [B, L]
    behaviour = -torch.rand(rows, seq, device=device) * 10 - 7  # [B, L] near log(1/V)
    ref_logp = behaviour + 0.1 * torch.randn(rows, seq, device=device)  # [B, L]
    advantages = torch.randn(rows, device=device)  # [B]
    is_replay = torch.arange(rows, device=device) % 4 == 3  # [B]
    params = ObjectiveParams(loss_type="grpo", beta=0.04, tas_lambda=0.3)
    kwargs = {"ref_logp": ref_logp, "is_replay": is_replay, "objective": "avatar"}
    if args.path == "fused":
        kwargs.update(token_chunk=args.token_chunk, vocab_chunk=args.vocab_chunk)
        fn = fused_objective
    else:
        fn = reference_objective

    def step() -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process summed over its threads) of one pass."""
        hidden.grad = None
        weight.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        loss, _, _ = fn(hidden, weight, ids, mask, behaviour, advantages, params, **kwargs)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - start_cpu

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    first = step()
    if device.type == "cuda":
        peak_extra = torch.cuda.max_memory_allocated() - base
    else:
        peak_extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = [first] + [step() for _ in range(args.repeats - 1)]
    return {
        "path": args.path,
        "tokens": rows * seq,
        "hidden": hidden_size,
        "vocab": args.vocab,
        "dtype": args.dtype,
        "device": args.device,
        "token_chunk": args.token_chunk if args.path == "fused" else None,
        "vocab_chunk": args.vocab_chunk if args.path == "fused" else None,
        "peak_extra_gib": peak_extra / 2**30,
        "inputs_gib": base / 2**30,
        "time_s_median": statistics.median(t for t, _ in times),
        "cpu_s_median": statistics.median(c for _, c in times),
        "times_s": [t for t, _ in times],
        "cpu_times_s": [c for _, c in times],
        "load_avg_1min": os.getloadavg()[0],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def full_logits_gib(tokens: int, vocab: int) -> float:
    """Rough footprint of the full-logits path: logits, log_softmax and their gradient in fp32."""
    return 3 * tokens * vocab * 4 / 2**30


def run_config(args: argparse.Namespace, path: str, hidden: int, tokens: int) -> dict:
    if path == "full" and full_logits_gib(tokens, args.vocab) > args.max_gib:
        return {
            "path": path,
            "tokens": tokens,
            "hidden": hidden,
            "skipped": f"estimated {full_logits_gib(tokens, args.vocab):.1f} GiB > --max-gib {args.max_gib}",
        }
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--path",
        path,
        "--hidden",
        str(hidden),
        "--tokens",
        str(tokens),
    ]
    for name in ("vocab", "repeats", "token_chunk", "dtype", "device"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.vocab_chunk is not None:
        cmd += ["--vocab-chunk", str(args.vocab_chunk)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {
            "path": path,
            "tokens": tokens,
            "hidden": hidden,
            "skipped": f"exit {done.returncode}: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'killed'}",
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results: list[dict]) -> str:
    lines = [
        "| H | tokens | full: peak extra GiB | fused: peak extra GiB | memory ratio | full: wall s | "
        "fused: wall s | wall ratio (fused/full) | full: CPU s | fused: CPU s | CPU ratio (fused/full) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["hidden"], r["tokens"]) for r in results})
    for hidden, tokens in keys:
        by = {r["path"]: r for r in results if (r["hidden"], r["tokens"]) == (hidden, tokens)}
        full, fused = by.get("full", {}), by.get("fused", {})

        def cell(r: dict, key: str) -> str:
            return f"{r[key]:.2f}" if key in r else r.get("skipped", "-")

        both = "peak_extra_gib" in full and "peak_extra_gib" in fused
        mem = f"{full['peak_extra_gib'] / fused['peak_extra_gib']:.1f}x less" if both else "-"
        speed = f"{fused['time_s_median'] / full['time_s_median']:.2f}x" if both else "-"
        cpu = f"{fused['cpu_s_median'] / full['cpu_s_median']:.2f}x" if both else "-"
        lines.append(
            f"| {hidden} | {tokens} | {cell(full, 'peak_extra_gib')} | {cell(fused, 'peak_extra_gib')} | {mem} | "
            f"{cell(full, 'time_s_median')} | {cell(fused, 'time_s_median')} | {speed} | "
            f"{cell(full, 'cpu_s_median')} | {cell(fused, 'cpu_s_median')} | {cpu} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[896], help="hidden sizes (Qwen2.5-0.5B: 896)"
    )
    parser.add_argument("--big", action="store_true", help="also H = 3584 (Qwen2.5-7B)")
    parser.add_argument("--vocab", type=int, default=VOCAB)
    parser.add_argument("--repeats", type=int, default=3, help="timed forward+backward passes")
    parser.add_argument("--token-chunk", type=int, default=1024)
    parser.add_argument("--vocab-chunk", type=int, default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paths", nargs="+", default=["full", "fused"], choices=["full", "fused"])
    parser.add_argument("--max-gib", type=float, default=18.0, help="skip the full path above this estimate")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/loss.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=["full", "fused"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    hiddens = sorted(set(args.hidden + ([3584] if args.big else [])))
    results = []
    for hidden in hiddens:
        for tokens in args.tokens:
            for path in args.paths:
                result = run_config(args, path, hidden, tokens)
                print(json.dumps(result), file=sys.stderr, flush=True)
                results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
