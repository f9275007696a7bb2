"""SKUs per minute for the studio pipeline, per-stage medians and peak memory, by batch size.

Each size is a fresh catalog of distinct photos (bench/_catalog.py: sample + scikit-image
photos, varied crops, sizes and formats, generated in a temporary folder) run through
``lightbox run`` as a child process with cold caches: its own data dir, SQLite catalog and
temporary Prefect API. Figures per size:

* SKUs/min over the batch's own wall time (report.json ``wall_seconds``: batch created ->
  done) and over the whole command (temporary Prefect server start included);
* per-stage medians over the SKUs from report.json's timings (a stage's seconds summed
  over a SKU's attempts and profiles, measured inside tasks that run concurrently, so
  they include waiting for the cores);
* peak memory: the process tree's summed RSS sampled every 0.25 s, and the kernel's peak
  RSS of the largest process (wait4's rusage). It must not grow with batch size.

    python bench/throughput.py [--sizes 10 100] [--full] [--upscaler lanczos] [--json out.json]

``--full`` adds 1000 SKUs (hours on 2 cores). ``--upscaler realesrgan-x4plus-ncnn`` or
``auto`` measures the model upscaler instead of classical resampling.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _catalog import (  # noqa: E402
    REPO, check_ran, child_env, generate_catalog, lightbox_command, read_report, run_child,
    stage_medians,
)


def measure(size: int, root: Path, model_dir: Path, upscaler: str) -> dict:
    folder = root / f"size-{size}"
    manifest = generate_catalog(folder / "catalog", size)
    out = folder / "out"
    load_before = os.getloadavg()
    run = run_child(lightbox_command(manifest, out, folder / "data", model_dir, upscaler),
                    env=child_env(folder / "prefect-home"))
    check_ran(run)
    report = read_report(out)
    wall = report["wall_seconds"]
    attempts = collections.Counter(e["attempts"] for e in report["skus"])
    return {
        "skus": size, "upscaler": upscaler, "counts": report["counts"],
        "batch_wall_s": wall, "command_s": round(run.seconds, 2),
        "skus_per_min_batch": round(size * 60.0 / wall, 2),
        "skus_per_min_command": round(size * 60.0 / run.seconds, 2),
        "stage_medians": stage_medians(report),
        "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "peak_tree_rss_mb": round(run.peak_tree_rss_mb, 1),
        "peak_process_maxrss_mb": round(run.peak_maxrss_mb, 1),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }


def print_figures(r: dict) -> None:
    n = r["skus"]
    print(f"throughput {n:>4} SKUs: {r['skus_per_min_batch']:.2f} SKUs/min over the batch "
          f"({r['batch_wall_s']:.1f} s), {r['skus_per_min_command']:.2f} over the command ({r['command_s']:.1f} s)")
    medians = ", ".join(f"{stage} {m['median_s']:.2f} s" if m["median_s"] is not None else f"{stage} -"
                        for stage, m in r["stage_medians"].items())
    print(f"stage medians {n:>4} SKUs (s per SKU, all attempts and profiles): {medians}")
    print(f"peak memory {n:>4} SKUs: {r['peak_tree_rss_mb']:.0f} MB process tree (sampled), "
          f"{r['peak_process_maxrss_mb']:.0f} MB largest process (rusage)")
    print(f"outcome {n:>4} SKUs: {r['counts']}, attempts per SKU {r['attempts']}, "
          f"load average {r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--full", action="store_true", help="add 1000 SKUs (takes hours on 2 cores)")
    ap.add_argument("--upscaler", default="lanczos", choices=["lanczos", "auto", "realesrgan-x4plus-ncnn"])
    ap.add_argument("--model-dir", type=Path, default=REPO / ".lightbox" / "models")
    ap.add_argument("--workdir", type=Path, help="keep the catalogs and outputs here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.sizes + ([1000] if args.full else [])))
    results = []
    with tempfile.TemporaryDirectory(prefix="lightbox-throughput-") as tmp:
        root = args.workdir or Path(tmp)
        for size in sizes:
            result = measure(size, root, args.model_dir, args.upscaler)
            print_figures(result)
            results.append(result)
    if len(results) > 1:
        small, large = results[0], results[-1]
        growth = large["peak_tree_rss_mb"] / small["peak_tree_rss_mb"]
        print(f"memory growth {small['skus']} -> {large['skus']} SKUs: x{growth:.2f} (process tree peak)")
    print(f"machine: {os.cpu_count()} cpus")
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "sizes": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
