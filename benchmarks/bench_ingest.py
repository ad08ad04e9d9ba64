"""Benchmark: media ingestion, clips per second of our loader against the raw decoder calls alone.

Three ways to read a clip, each timed over the same list of clips:
- `raw`: what any loader must do at the least: decord `VideoReader(path).get_batch(indices)` for
  the same uniformly spaced frame indices our loader picks, plus a PyAV decode of the audio track
  to float samples (no probe, no checks, no resize, no resampling, no features);
- `load_clip`: `avatar_core.data.media.load_clip` (probe with the truncation checks, limits,
  decord frames, resize to the pixel budget, PyAV audio, channel mix, soxr resampling);
- `ours`: `load_clip` followed by `log_mel` (Whisper-style features), the headline path.
Each runs in a `multiprocessing` pool of 1 and of 2 worker processes (spawned, then warmed up on
two clips per worker so imports and decoder start-up are not timed) mapping over the clip paths;
every worker returns the decoded arrays, as a data loader would. A repeat is one pass over all
clips per (mode, workers), in interleaved order so that load changes on a shared machine spread
over all modes; the table shows the median clips/s over `--repeats` passes, the ratio ours/raw
(1.0 = as fast as the raw decoder; below 1 = slower) and the speed-up of 2 workers over 1. The
CPU time each worker spends per clip (`time.process_time`) is recorded too, with the same ratio
in clips per CPU-second: it is far less sensitive to other jobs on the machine than wall time.
"cores used" is the workers' CPU time over the wall time of a pass: when it stays well below the
worker count, other jobs held the cores, and the wall-clock speed-up says little about scaling.
Files are read from the page cache after the warm-up pass (the clips are small), so disk speed
is not measured. `--blas-threads N` sets OPENBLAS/OMP/MKL_NUM_THREADS in the workers: numpy's
OpenBLAS otherwise starts one thread per core in every worker, and `log_mel`'s small float64
matmul spends most of its time synchronising them.

    python benchmarks/bench_ingest.py --out benchmarks/results/ingest_cpu_default.json
    python benchmarks/bench_ingest.py --blas-threads 1 --out benchmarks/results/ingest_cpu_blas1.json
    python benchmarks/bench_ingest.py --data data/synthetic/media --workers 1 2 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from machine_info import cpu_model, uptime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

MODES = ("raw", "load_clip", "ours")


def raw_decode(path: str, n_frames: int) -> tuple:
    """The decoder calls alone: decord frames at the loader's indices, PyAV audio as floats."""
    import av
    import decord
    import numpy as np

    from avatar_core.data.media import sample_frame_indices

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    indices = sample_frame_indices(len(reader), n_frames)  # [n] same rule as load_clip
    frames = reader.get_batch(np.unique(indices).tolist()).asnumpy()  # [K, H, W, 3]
    chunks = []
    with av.open(path) as container:
        if container.streams.audio:
            for frame in container.decode(container.streams.audio[0]):
                chunks.append(frame.to_ndarray())  # [C, n] (fltp for AAC)
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)  # [C, N]
    return frames, audio


def read_one(path: str, mode: str, n_frames: int, max_pixels: int, sample_rate: int, backend: str) -> tuple:
    """Read one clip in `mode`; return (CPU seconds this process spent, the decoded arrays)."""
    from avatar_core.data.media import load_clip, log_mel

    start = time.process_time()
    if mode == "raw":
        arrays = raw_decode(path, n_frames)
    else:
        clip = load_clip(
            path, n_frames=n_frames, max_pixels=max_pixels, sample_rate=sample_rate, backend=backend
        )
        arrays = (clip.frames, clip.audio)
        if mode == "ours":
            arrays += (log_mel(clip.audio, sample_rate),)
    return time.process_time() - start, arrays


def make_clips(args: argparse.Namespace, root: Path) -> list[str]:
    """Generate the synthetic clips (embedded default settings, `--n-clips` of them) under root."""
    from avatar_core.config import SyntheticConfig
    from avatar_core.data.synthetic import generate_dataset

    cfg = SyntheticConfig(
        n_train=args.n_clips,
        n_val=0,
        n_test=4,  # the generator requires a test split; these 4 clips are not timed
        frame_size=args.frame_size,
        duration_s=args.duration,
        fps=args.fps,
    )
    generate_dataset(cfg, root, seed=0, progress=False, n_frames=args.n_frames, num_workers=2)
    return sorted(str(p) for p in (root / "media").glob("*-train-*.mp4"))


def machine() -> dict:
    import av
    import decord
    import numpy as np

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "decord": decord.__version__,
        "av": av.__version__,
        "numpy": np.__version__,
        "uptime": uptime(),
    }


def run(args: argparse.Namespace, paths: list[str]) -> dict:
    read = partial(
        read_one,
        n_frames=args.n_frames,
        max_pixels=args.max_pixels,
        sample_rate=args.sample_rate,
        backend=args.backend,
    )
    context = multiprocessing.get_context("spawn")  # decord and FFmpeg threads do not survive fork
    pools = {w: context.Pool(w) for w in args.workers}
    passes: dict[str, list[dict]] = {f"{m}/{w}": [] for m in args.modes for w in args.workers}
    try:
        for w, pool in pools.items():  # imports, decoder start-up, page cache: not timed
            for mode in args.modes:
                pool.map(partial(read, mode=mode), paths[: 2 * w], chunksize=1)
        for repeat in range(args.repeats):
            order = [(m, w) for w in args.workers for m in args.modes]
            if repeat % 2:
                order.reverse()
            for mode, w in order:
                load = os.getloadavg()[0]
                start = time.perf_counter()
                out = pools[w].map(partial(read, mode=mode), paths, chunksize=args.chunksize)
                wall = time.perf_counter() - start
                cpu = sum(c for c, _ in out)
                passes[f"{mode}/{w}"].append(
                    {
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "clips_per_s": len(paths) / wall,
                        "cores_used": cpu / wall,
                        "load_1min": load,
                    }
                )
    finally:
        for pool in pools.values():
            pool.close()
            pool.join()
    summary = {}
    for key, runs in passes.items():
        mode, w = key.split("/")
        summary[key] = {
            "mode": mode,
            "workers": int(w),
            "clips_per_s_median": statistics.median(r["clips_per_s"] for r in runs),
            "cpu_ms_per_clip_median": 1000 * statistics.median(r["cpu_s"] for r in runs) / len(paths),
            "cores_used_median": statistics.median(r["cpu_s"] / r["wall_s"] for r in runs),
            "passes": runs,
        }
    return summary


def markdown(summary: dict, workers: list[int], modes: list[str]) -> str:
    def get(mode: str, w: int) -> dict | None:
        return summary.get(f"{mode}/{w}")

    lines = [
        "| mode | workers | clips/s | CPU ms/clip | cores used | ratio to raw (clips/s) | "
        "ratio to raw (CPU) | speed-up over 1 worker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in modes:
        for w in workers:
            r = get(mode, w)
            raw, one = get("raw", w), get(mode, workers[0])
            ratio = f"{r['clips_per_s_median'] / raw['clips_per_s_median']:.2f}x" if raw else "-"
            # clips per CPU-second relative to raw: the contention-robust form of the same ratio
            cpu_ratio = f"{raw['cpu_ms_per_clip_median'] / r['cpu_ms_per_clip_median']:.2f}x" if raw else "-"
            speedup = (
                f"{r['clips_per_s_median'] / one['clips_per_s_median']:.2f}x" if w != workers[0] else "-"
            )
            lines.append(
                f"| {mode} | {w} | {r['clips_per_s_median']:.1f} | {r['cpu_ms_per_clip_median']:.2f} | "
                f"{r['cores_used_median']:.2f} | {ratio} | {cpu_ratio} | {speedup} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="folder of clips (*.mp4, searched recursively)"
    )
    parser.add_argument("--n-clips", type=int, default=96, help="clips to generate when --data is not given")
    parser.add_argument("--frame-size", type=int, default=56, help="generated clips: width and height")
    parser.add_argument("--duration", type=float, default=2.0, help="generated clips: seconds")
    parser.add_argument("--fps", type=int, default=8, help="generated clips: frame rate")
    parser.add_argument("--n-frames", type=int, default=4, help="frames sampled per clip")
    parser.add_argument("--max-pixels", type=int, default=56 * 56)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--backend", default="decord", choices=["decord", "pyav"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over all clips per setting")
    parser.add_argument("--chunksize", type=int, default=4, help="clips per task sent to a worker")
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="BLAS threads per worker (default: the library's)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest.json"))
    parser.add_argument("--table", type=Path, default=None, help="print the table of a saved result and exit")
    args = parser.parse_args()
    if args.table is not None:
        saved = json.loads(args.table.read_text())
        print(markdown(saved["results"], saved["settings"]["workers"], saved["settings"]["modes"]))
        return
    if "raw" not in args.modes:
        args.modes.insert(0, "raw")  # every ratio needs the raw decoder measured in the same run
    args.workers = sorted(set(args.workers))
    if args.blas_threads is not None:  # inherited by the spawned workers before they import numpy
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.blas_threads)

    with tempfile.TemporaryDirectory() as tmp:
        if args.data is not None:
            if not args.data.is_dir():
                parser.error(f"--data {args.data}: not a folder")
            paths = sorted(str(p) for p in args.data.rglob("*.mp4"))
            if not paths:
                parser.error(f"--data {args.data}: no *.mp4 files in it")
        else:
            paths = make_clips(args, Path(tmp))
        before = machine()
        start = time.perf_counter()
        summary = run(args, paths)
        total = time.perf_counter() - start
        after = machine()["uptime"]
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "clips": len(paths),
        "data": str(args.data) if args.data else "generated",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "data")},
        "machine": {**before, "uptime_after": after},
        "benchmark_s": total,
        "results": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(summary, args.workers, args.modes))


if __name__ == "__main__":
    main()
