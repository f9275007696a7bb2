"""Seconds per image for each CPU model stage on a real photo (skimage's coffee, 400x600).

Stages: u2netp segmentation (onnxruntime), mask refinement, Real-ESRGAN x4plus (ncnn)
on a 256x256 crop -> 1024x1024, and classical Lanczos resampling of the same crop to
1024 px. The first call of each model is reported apart (session/graph warm-up).

    python bench/cpu_models.py --model-dir .lightbox/models [--threads 2] [--json out.json]

Needs the registry weights (``lightbox models fetch`` or imaging.weights.fetch_weights).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imaging.refine import refine_mask  # noqa: E402
from imaging.segment import OnnxSalientSegmenter  # noqa: E402
from imaging.upscale import NcnnRealEsrgan, ResampleUpscaler  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(first call s, median of the next ``repeat`` calls s, last result)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return first, (statistics.median(runs) if runs else first), out


def run(model_dir: Path, threads: int, repeat: int, sr_repeat: int) -> dict:
    rgb = data.coffee()
    crop = np.ascontiguousarray(rgb[72:328, 172:428])  # 256x256 around the cup
    stages = []

    t0 = time.perf_counter()
    seg = OnnxSalientSegmenter("u2netp", model_dir, threads=threads, refine_strength=0)
    load_seg = time.perf_counter() - t0
    first, med, raw = timed(lambda: seg.predict(rgb), repeat)
    stages.append(dict(stage="u2netp segment", size="600x400", load_s=load_seg, first_s=first, median_s=med))

    first, med, _ = timed(lambda: refine_mask(rgb, raw), repeat)
    stages.append(dict(stage="refine (guided filter)", size="600x400", load_s=0.0, first_s=first, median_s=med))
    first, med, _ = timed(lambda: refine_mask(rgb, raw, matting=True), repeat)
    stages.append(dict(stage="refine + matting", size="600x400", load_s=0.0, first_s=first, median_s=med))

    t0 = time.perf_counter()
    sr = NcnnRealEsrgan(model_dir, threads=threads)
    load_sr = time.perf_counter() - t0
    first, med, _ = timed(lambda: sr.upscale(crop), sr_repeat)
    stages.append(
        dict(
            stage=f"realesrgan-x4plus ncnn (tile {sr.tile})",
            size="256->1024",
            load_s=load_sr,
            first_s=first,
            median_s=med,
        )
    )

    lanczos = ResampleUpscaler(4.0)
    first, med, _ = timed(lambda: lanczos.upscale(crop), repeat)
    stages.append(dict(stage="lanczos resample", size="256->1024", load_s=0.0, first_s=first, median_s=med))
    return {
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "stages": stages,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=Path(".lightbox/models"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per fast stage")
    ap.add_argument("--sr-repeat", type=int, default=1, help="timed ncnn calls after the first")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    result = run(args.model_dir, args.threads, args.repeat, args.sr_repeat)
    for s in result["stages"]:
        print(
            f"{s['stage']:34s} {s['size']:>10s}  median {s['median_s']:7.3f} s  "
            f"first {s['first_s']:7.3f} s  load {s['load_s']:6.3f} s"
        )
    print(f"threads {result['threads']} of {result['cpu_count']} cpus, load average {result['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
