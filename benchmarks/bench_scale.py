"""Benchmark: real data at real scale: time to first step and peak RSS before and after the media store.

What it measures, on a generated data set of `--n-clips` clips (default 1,000) of `--seconds` s
(default 10) of 640x360 H.264 video at 8 fps with 48 kHz AAC audio, decoded at the authors' budget
(16 frames, max_pixels 200,704 = 448 x 448, 16 kHz audio):

1. `stages`: for each data set size in `--sizes` (default 250 and 1,000 clips, the first clips of
   the same set) the ingest stage of this checkout (media store included), then SFT and RL stage
   S1, each in a fresh process, once with this checkout (`after`) and once with the code before
   the media store (`before`: `--before-src`, a checkout of commit 76972f0, where every stage
   decodes the whole split before step 1 and keeps it in RAM). Per run: the time from process
   launch to the end of the first optimiser step (the first step-log line, recorded by wrapping
   `StepLog.append`), the peak RSS of the process (`VmHWM`: not `ru_maxrss`, which Linux carries
   over from the launching process's memory at exec), and the RSS at the first step.
   Both versions train the same tiny base model on the same ingested data set.
2. `throughput`: on the first `--throughput-clips` clips, and on as many 448x448 clips (exactly
   the pixel budget, so nothing is resized), wall clips/s and CPU seconds per clip (workers
   included; the contention-robust figure) of the raw decoder calls (decord `get_batch` at the
   loader's frame indices + PyAV audio decode, as bench_ingest.py's `raw`), of the same with the
   decoder scaling to the budget (`raw+scale`, the frames load_clip gives) or with a PIL bicubic
   resize after it (`raw+pil`, load_clip before the decoder scaled), and of ingest's decoding pass
   (`ours`: `build_store`: probe, limits, frames, audio resampling, CRC-32, writing the store),
   with 1 and 2 workers, repeats interleaved so load changes on a shared machine spread over all.
3. `default_rl`: RL steps/s of stage S1 on the embedded default (params.yaml, 32 training clips,
   150 SFT steps, as bench_rl_step.py builds it), `before` and `after` alternated `--repeats`
   times; median step time over the steps after the first.

The clips (scale_clips.py) are written once into `--work` (outside the repository) and reused.

    git -C . worktree add /tmp/avatar-before 76972f0   # or: git archive 76972f0 | tar -x -C DIR
    python benchmarks/bench_scale.py --work /work/scratch-15/scale --before-src /tmp/avatar-before \\
        --out benchmarks/results/scale_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from machine_info import cpu_model, uptime
from scale_clips import AUDIO_RATE, FPS, SIZE, TASK, make_clips
from scale_report import tables

REPO = Path(__file__).resolve().parents[1]
if "--child" not in sys.argv:  # a child imports the avatar_core of its PYTHONPATH (before or after)
    sys.path.insert(0, str(REPO))

AUTHORS_MEDIA = {"n_frames": 16, "max_pixels": 200_704, "sample_rate": 16000}


# --------------------------------------------------------------------------- stages in a child process


def project_config(work: Path, size: int, sft_steps: int, rl_steps: int) -> dict:
    from avatar_core.config import load_config

    base = load_config(REPO / "params.yaml").model_dump(mode="json")
    root = work / f"project-{size}"
    base["paths"] = {k: str(root / Path(v)) for k, v in base["paths"].items()}
    base["data"].update(
        source="jsonl", path=str(work / f"records-{size}.jsonl"), media_root=str(work), num_workers=2
    )
    base["data"]["media"].update(AUTHORS_MEDIA)
    base["data"]["synthetic"]["n_val"] = 0  # no validation split: SFT skips its validation loss
    base["sft"].update(max_steps=sft_steps, batch_size=2, save_every=10_000, eval_every=10_000)
    base["rl"]["s1"].update(
        steps=rl_steps, prompts_per_step=2, group_size=4, save_every=rl_steps, log_every=1
    )
    base["rl"]["s1"]["tasks"] = [TASK]
    base["rl"]["s1"]["generation"]["max_new_tokens"] = 16
    return base


def prune(model, values: dict) -> dict:
    """Keep only the keys `model` (a pydantic config class) knows: the code before the media store
    has no data.loader or data.media.audio_dtype."""
    from pydantic import BaseModel

    kept = {}
    for key, value in values.items():
        if key not in model.model_fields:
            continue
        annotation = model.model_fields[key].annotation
        nested = (
            isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict)
        )
        kept[key] = prune(annotation, value) if nested else value
    return kept


def rss_kib(field: str = "VmRSS") -> int:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def child_stage(config_path: Path, stage: str, variant: str, sft_tag: str, launched: float) -> dict:
    """Run one stage with the avatar_core on PYTHONPATH; time and memory to its first step.
    Outputs go to folders tagged `variant`; the SFT checkpoint written or read is tagged `sft_tag`."""
    from avatar_core.config import AvatarConfig, config_from_dict
    from avatar_core.recipes import metrics
    from avatar_core.recipes.common import set_threads

    config = json.loads(config_path.read_text())
    for key in ("rl_dir", "runs_dir", "metrics_dir"):
        config["paths"][key] += f"-{variant}"
    config["paths"]["sft_dir"] += f"-{sft_tag}"
    cfg = config_from_dict(prune(AvatarConfig, config))
    set_threads(cfg.num_threads)
    marks: dict = {"steps": 0}
    append = metrics.StepLog.append

    def timed_append(self, record):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks.setdefault("step_cpu_s", []).append(usage.ru_utime + usage.ru_stime)  # at each step's end
        if not marks["steps"]:
            marks["first_step_s"] = time.time() - launched
            marks["rss_first_step_mib"] = rss_kib() / 1024
            usage = resource.getrusage(resource.RUSAGE_SELF)
            marks["cpu_first_step_s"] = usage.ru_utime + usage.ru_stime  # robust to other jobs
        marks["steps"] += 1
        return None if self is None else append(self, record)

    metrics.StepLog.append = timed_append
    if stage == "ingest":
        from avatar_core.recipes.ingest import run_ingest

        run_ingest(cfg, progress=False)
    elif stage == "pass":  # every training clip once through the loader, as an epoch would
        from avatar_core.recipes.common import load_samples, open_clips

        clips, samples = open_clips(cfg), load_samples(cfg, "train")
        for i in range(0, len(samples), 8):
            clips.prefetch(samples[i + 8 : i + 16])
            clips.get_many(samples[i : i + 8])
            if i == 0:
                timed_append(None, {})
        marks.update(clips_read=clips.stats.loads, peak_cached_mib=clips.stats.peak_cached_bytes / 2**20)
    elif stage == "sft":
        from avatar_core.recipes.sft import run_sft

        run_sft(cfg, progress=False)
    else:
        from avatar_core.recipes.rl import run_rl

        run_rl(cfg, stage, progress=False)
    return {
        **marks,
        "total_s": time.time() - launched,
        "cpu_total_s": sum(
            getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime")
        ),
        "peak_rss_mib": rss_kib("VmHWM") / 1024,
        "avatar_core": str(Path(sys.modules["avatar_core"].__file__).parent),
    }


def in_child(src: Path, *argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    launched = time.time()
    cmd = [sys.executable, __file__, *argv, "--launched", repr(launched)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_stages(args: argparse.Namespace) -> list[dict]:
    """Ingest once per size, then every (code, stage) `--stage-repeats` times, the order of the
    runs reversed on odd repeats so load changes on a shared machine spread over both codes."""
    rows = []
    for size in args.sizes:
        config_path = args.work / f"project-{size}.json"
        config_path.write_text(json.dumps(project_config(args.work, size, args.sft_steps, args.rl_steps)))
        ingest = in_child(REPO, "--child", str(config_path), "ingest", "after", "after")
        rows.append({"size": size, "variant": "after", "stage": "ingest", **ingest, "load": uptime()})
        print(f"{size} clips: ingest {ingest['total_s']:.0f} s", file=sys.stderr)
        runs = [("after", REPO, stage) for stage in ("sft", "s1", "pass")]
        if args.before_src is not None:
            runs += [("before", args.before_src, stage) for stage in ("sft", "s1")]
        for repeat in range(args.stage_repeats):
            for variant, src, stage in runs if repeat % 2 == 0 else runs[::-1]:
                # fresh output folders per run (a finished stage would be skipped); s1 starts from
                # the SFT checkpoint of the first repeat, which runs SFT before s1
                tag, sft_tag = f"{variant}-r{repeat}", f"{variant}-r{0 if stage == 's1' else repeat}"
                result = in_child(src, "--child", str(config_path), stage, tag, sft_tag)
                rows.append({"size": size, "variant": variant, "stage": stage, "repeat": repeat, **result,
                             "load": uptime()})  # fmt: skip
                print(f"{size} clips, {variant}, {stage}: first step {result['first_step_s']:.1f} s, "
                      f"peak RSS {result['peak_rss_mib']:.0f} MiB ({uptime()})", file=sys.stderr)  # fmt: skip
    return rows


# --------------------------------------------------------------------------- throughput


def raw_decode(path: str, n_frames: int, max_pixels: int = 0, scaler: str = "") -> tuple:
    """The decoder calls alone: decord frames at the loader's indices and PyAV audio. With
    `max_pixels`, the frames are brought to the budget by `scaler`: "decoder" (decord's own scale
    filter, what load_clip does now) or "pil" (a PIL bicubic resize of the decoded frames, what
    load_clip did before)."""
    import av
    import decord
    import numpy as np
    from PIL import Image

    from avatar_core.data.media import fit_frame_size, sample_frame_indices

    height, width = -1, -1
    if max_pixels and scaler == "decoder":
        with av.open(path) as container:
            context = container.streams.video[0].codec_context
            height, width = fit_frame_size(context.height, context.width, max_pixels)
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1, width=width, height=height)
    frames = reader.get_batch(np.unique(sample_frame_indices(len(reader), n_frames)).tolist()).asnumpy()
    if max_pixels and scaler == "pil":
        h, w = fit_frame_size(*frames.shape[1:3], max_pixels)
        frames = np.stack(
            [np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BICUBIC)) for f in frames]
        )
    with av.open(path) as container:
        chunks = [f.to_ndarray() for f in container.decode(container.streams.audio[0])]
    return frames, np.concatenate(chunks, axis=1)


def cpu_now() -> float:
    """CPU seconds of this process and of its children that have been waited for (joined pools)."""
    return sum(
        getattr(resource.getrusage(who), f)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )


def run_throughput(args: argparse.Namespace, folder: Path) -> dict:
    """Per mode and worker count: wall clips/s and CPU s per clip (workers included). Modes: `raw`
    (decoder calls at native size), `raw+scale` (the decoder scaling to the budget, as load_clip does),
    `raw+pil` (native decode plus a PIL bicubic resize, as load_clip did before), `ours` (ingest's decoding pass
    writing a store). One worker runs in this process; two run in a forked pool (raw modes) or
    build_store's own pool, started inside the timed region in both cases."""
    import tempfile
    from multiprocessing import get_context

    from avatar_core.config import MediaConfig
    from avatar_core.data.store_build import build_store

    paths = sorted((folder / "media").glob("clip-*.mp4"))[: args.throughput_clips]
    media = MediaConfig(**AUTHORS_MEDIA)
    decoders = {
        "raw": partial(raw_decode, n_frames=media.n_frames),
        "raw+scale": partial(
            raw_decode, n_frames=media.n_frames, max_pixels=media.max_pixels, scaler="decoder"
        ),
        "raw+pil": partial(raw_decode, n_frames=media.n_frames, max_pixels=media.max_pixels, scaler="pil"),
    }
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    order = [(mode, w) for w in (1, 2) for mode in ("raw", "raw+scale", "raw+pil", "ours")]
    for repeat in range(args.repeats):
        for mode, workers in order if repeat % 2 == 0 else order[::-1]:
            start, cpu_start = time.perf_counter(), cpu_now()
            if mode in decoders and workers == 1:
                for path in paths:
                    decoders[mode](str(path))
            elif mode in decoders:
                pool = get_context("fork").Pool(workers)
                pool.map(decoders[mode], [str(p) for p in paths], chunksize=1)
                pool.close()
                pool.join()
            else:
                with tempfile.TemporaryDirectory(dir=args.work) as tmp:
                    items = [(p.name, p) for p in paths]
                    assert not build_store(
                        items, media, Path(tmp) / "store", num_workers=workers, progress=False
                    )
            key = f"{mode}/{workers}"
            times.setdefault(key, []).append(len(paths) / (time.perf_counter() - start))
            cpu.setdefault(key, []).append((cpu_now() - cpu_start) / len(paths))
            print(
                f"throughput {key}: {times[key][-1]:.2f} clips/s, {cpu[key][-1]:.3f} CPU s/clip",
                file=sys.stderr,
            )
    return {"clips": len(paths), "clips_per_s": times, "cpu_s_per_clip": cpu, "load": uptime()}


# --------------------------------------------------------------------------- RL steps/s on the default


def run_default_rl(args: argparse.Namespace) -> dict:
    root = args.work / "default-project"
    config = default_config(root, args.default_rl_steps)
    config_path = args.work / "default-project.json"
    config_path.write_text(json.dumps(config))
    if not (Path(config["paths"]["sft_dir"] + "-base") / "done.json").is_file():
        in_child(REPO, "--child", str(config_path), "ingest", "base", "base")
        in_child(REPO, "--child", str(config_path), "sft", "base", "base")
    runs: dict[str, list[float]] = {"after": [], "before": []}
    cpu: dict[str, list[float]] = {"after": [], "before": []}
    for repeat in range(args.repeats):
        for variant in ("after", "before") if repeat % 2 == 0 else ("before", "after"):
            src = REPO if variant == "after" else args.before_src
            if src is None:
                continue
            tag = f"{variant}{repeat}"
            result = in_child(src, "--child", str(config_path), "s1", tag, "base")
            log = Path(config["paths"]["runs_dir"] + f"-{tag}") / "s1" / "log.jsonl"
            steps = [json.loads(line) for line in log.read_text().splitlines()][1:]  # step 1: warm-up
            phases = ("time_generation", "time_reward", "time_buffer", "time_loss_optim")
            runs[variant].append(statistics.median(sum(s[p] for p in phases) for s in steps))
            marks = result["step_cpu_s"]
            cpu[variant].append(
                statistics.median(b - a for a, b in zip(marks, marks[1:], strict=False))
            )  # steps 2..N
            print(f"default RL {variant}: {runs[variant][-1]:.3f} s/step, {cpu[variant][-1]:.3f} CPU s/step "
                  f"({uptime()})", file=sys.stderr)  # fmt: skip
    return {"median_step_s": runs, "median_step_cpu_s": cpu, "steps": args.default_rl_steps, "load": uptime()}


def default_config(root: Path, steps: int) -> dict:
    from avatar_core.config import load_config

    base = load_config(REPO / "params.yaml").model_dump(mode="json")
    base["paths"] = {k: str(root / Path(v)) for k, v in base["paths"].items()}
    base["data"]["synthetic"].update(n_train=32, n_val=4, n_test=8)
    base["sft"].update(max_steps=150, batch_size=4, save_every=10_000)
    base["sft"]["optim"].update(lr=3e-3)
    base["rl"]["s1"].update(steps=steps, save_every=steps, log_every=1)
    return base


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, required=False, help="folder for clips and projects (outside git)"
    )
    parser.add_argument("--before-src", type=Path, default=None, help="checkout of the code before the store")
    parser.add_argument("--n-clips", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--sft-steps", type=int, default=3)
    parser.add_argument("--rl-steps", type=int, default=2)
    parser.add_argument("--throughput-clips", type=int, default=100)
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats of the throughput and default_rl parts"
    )
    parser.add_argument("--stage-repeats", type=int, default=3, help="runs of each (code, stage) cell")
    parser.add_argument("--default-rl-steps", type=int, default=8)
    parser.add_argument("--parts", nargs="+", default=["stages", "throughput", "default_rl"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_cpu.json"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # config, stage, variant, sft tag
    parser.add_argument("--launched", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config, stage, variant, sft_tag = args.child
        print(json.dumps(child_stage(Path(config), stage, variant, sft_tag, args.launched or time.time())))
        return
    if args.work is None:
        parser.error("--work is required")
    args.work = args.work.resolve()
    if args.before_src is not None:
        args.before_src = args.before_src.resolve()
    result: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "clips": {
            "n": args.n_clips,
            "seconds": args.seconds,
            "size": f"{SIZE[1]}x{SIZE[0]}",
            "fps": FPS,
            "audio_rate": AUDIO_RATE,
            "media": AUTHORS_MEDIA,
        },  # fmt: skip
        "load_start": uptime(),
    }
    start = time.perf_counter()
    result["clips"]["make_s"] = make_clips(args.work, args.n_clips, args.seconds, SIZE, args.sizes)
    if "throughput" in args.parts:
        result["throughput"] = run_throughput(args, args.work)
        # the same clips at exactly the pixel budget: no resize, the decoder's work alone
        square = args.work / "throughput-448x448"
        make_clips(square, args.throughput_clips, args.seconds, (448, 448), [])
        result["throughput_448"] = run_throughput(args, square)
    if "stages" in args.parts:
        result["stages"] = run_stages(args)
    if "default_rl" in args.parts:
        result["default_rl"] = run_default_rl(args)
    result["load_end"] = uptime()
    result["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(tables(result))


if __name__ == "__main__":
    main()
