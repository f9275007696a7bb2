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
    python bench/throughput.py --catalog products --sizes 40 --floor --rerun --max-attempts 1
    python bench/throughput.py --catalog products --sizes 12 --camera 4800x3600 --floor

``--floor`` runs ``bench/floor.py`` (a plain script: same u2netp weights, same three
exports, no Prefect, no gate) on the same files first and prints lightbox / script;
``--rerun`` runs each batch again with everything cached.

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
    REPO,
    check_ran,
    child_env,
    generate_catalog,
    generate_products,
    lightbox_command,
    read_report,
    run_child,
    stage_medians,
)


def measure(
    size: int,
    root: Path,
    model_dir: Path,
    upscaler: str,
    catalog: str = "photos",
    camera: tuple[int, int] | None = None,
    floor: bool = False,
    rerun: bool = False,
    max_attempts: int = 3,
) -> dict:
    folder = root / (f"size-{size}-{catalog}" + (f"-{camera[0]}x{camera[1]}" if camera else ""))
    manifest = (
        generate_products(folder / "catalog", size, camera)
        if catalog == "products"
        else generate_catalog(folder / "catalog", size)
    )
    figures: dict = {"catalog": catalog, "camera": list(camera) if camera else None}
    if floor:  # the plain script first, on the same files: its figures sit beside ours
        script = run_child(
            [
                sys.executable,
                str(REPO / "bench" / "floor.py"),
                str(manifest),
                str(folder / "floor-out"),
                "--model-dir",
                str(model_dir.resolve()),
            ]
        )
        check_ran(script)
        figures.update(floor_s=round(script.seconds, 2), floor_peak_rss_mb=round(script.peak_maxrss_mb, 1))
    out = folder / "out"
    load_before = os.getloadavg()
    command = lightbox_command(
        manifest, out, folder / "data", model_dir, upscaler, ["--max-attempts", str(max_attempts)]
    )
    env = child_env(folder / "prefect-home")
    run = run_child(command, env=env)
    check_ran(run)
    report = read_report(out)
    wall = report["wall_seconds"]
    if rerun:  # everything cached: the batch and the whole command again
        again = run_child(command, env=env)
        check_ran(again)
        figures.update(rerun_batch_s=read_report(out)["wall_seconds"], rerun_command_s=round(again.seconds, 2))
    attempts = collections.Counter(e["attempts"] for e in report["skus"])
    return {
        **figures,
        "skus": size,
        "upscaler": upscaler,
        "max_attempts": max_attempts,
        "counts": report["counts"],
        "batch_wall_s": wall,
        "command_s": round(run.seconds, 2),
        "skus_per_min_batch": round(size * 60.0 / wall, 2),
        "skus_per_min_command": round(size * 60.0 / run.seconds, 2),
        "stage_medians": stage_medians(report),
        "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "peak_tree_rss_mb": round(run.peak_tree_rss_mb, 1),
        "peak_process_maxrss_mb": round(run.peak_maxrss_mb, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def print_figures(r: dict) -> None:
    n = r["skus"]
    what = r["catalog"] + (f" at {r['camera'][0]}x{r['camera'][1]}" if r.get("camera") else "")
    print(f"catalog {n:>4} SKUs: {what}, upscaler {r['upscaler']}, at most {r['max_attempts']} attempt(s) per SKU")
    if "floor_s" in r:
        per = r["batch_wall_s"] / n, r["floor_s"] / n
        print(
            f"vs floor {n:>4} SKUs: lightbox batch {r['batch_wall_s']:.1f} s, command {r['command_s']:.1f} s; "
            f"script {r['floor_s']:.1f} s -> batch / script = {r['batch_wall_s'] / r['floor_s']:.2f} "
            f"(per SKU {per[0]:.2f} s vs {per[1]:.2f} s; script peak RSS {r['floor_peak_rss_mb']:.0f} MB)"
        )
    if "rerun_batch_s" in r:
        print(
            f"cached re-run {n:>4} SKUs: batch {r['rerun_batch_s']:.1f} s "
            f"({r['rerun_batch_s'] / r['batch_wall_s']:.3f} of the first), command {r['rerun_command_s']:.1f} s"
        )
    print(
        f"throughput {n:>4} SKUs: {r['skus_per_min_batch']:.2f} SKUs/min over the batch "
        f"({r['batch_wall_s']:.1f} s), {r['skus_per_min_command']:.2f} over the command ({r['command_s']:.1f} s)"
    )
    medians = ", ".join(
        f"{stage} {m['median_s']:.2f} s" if m["median_s"] is not None else f"{stage} -"
        for stage, m in r["stage_medians"].items()
    )
    print(f"stage medians {n:>4} SKUs (s per SKU, all attempts and profiles): {medians}")
    print(
        f"peak memory {n:>4} SKUs: {r['peak_tree_rss_mb']:.0f} MB process tree (sampled), "
        f"{r['peak_process_maxrss_mb']:.0f} MB largest process (rusage)"
    )
    print(
        f"outcome {n:>4} SKUs: {r['counts']}, attempts per SKU {r['attempts']}, "
        f"load average {r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--full", action="store_true", help="add 1000 SKUs (takes hours on 2 cores)")
    ap.add_argument("--upscaler", default="lanczos", choices=["lanczos", "auto", "realesrgan-x4plus-ncnn"])
    ap.add_argument("--model-dir", type=Path, default=REPO / ".lightbox" / "models")
    ap.add_argument("--workdir", type=Path, help="keep the catalogs and outputs here (default: a temp dir)")
    ap.add_argument(
        "--catalog",
        choices=["photos", "products"],
        default="photos",
        help="photos: crops of the sample + scikit-image photos; products: clean generated "
        "products (bench/qc_corpus.py) that the gate passes when cut right",
    )
    ap.add_argument(
        "--camera",
        type=lambda v: tuple(int(x) for x in v.split("x")),
        metavar="WxH",
        help="products enlarged to a camera frame, e.g. 4800x3600",
    )
    ap.add_argument("--floor", action="store_true", help="also run bench/floor.py on the same files")
    ap.add_argument("--rerun", action="store_true", help="run each batch a second time, all cached")
    ap.add_argument(
        "--max-attempts", type=int, default=3, help="renders per SKU (1: the render path alone, as the script does it)"
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.sizes + ([1000] if args.full else [])))
    results = []
    with tempfile.TemporaryDirectory(prefix="lightbox-throughput-") as tmp:
        root = args.workdir or Path(tmp)
        for size in sizes:
            result = measure(
                size,
                root,
                args.model_dir,
                args.upscaler,
                args.catalog,
                args.camera,
                args.floor,
                args.rerun,
                args.max_attempts,
            )
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
