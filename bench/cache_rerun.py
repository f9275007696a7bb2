"""A re-run of a finished batch as a share of the first run (target < 0.05).

Generates a catalog (bench/_catalog.py), runs ``lightbox run`` on it with cold caches,
then runs the same command again on the same data dir and output folder: segmentation,
cut-outs, renders and QC come from the cache, exports are skipped as already done.
Figures: the batch's own wall time (report.json ``wall_seconds``, batch created -> done),
the whole command's time (a temporary Prefect server starts each time), and both ratios.

    python bench/cache_rerun.py [--skus 25] [--upscaler lanczos] [--json out.json]
"""

from __future__ import annotations

import argparse
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
    lightbox_command,
    read_report,
    run_child,
)


def run_twice(skus: int, root: Path, model_dir: Path, upscaler: str) -> dict:
    manifest = generate_catalog(root / "catalog", skus)
    command = lightbox_command(manifest, root / "out", root / "data", model_dir, upscaler)
    env = child_env(root / "prefect-home")
    runs = []
    for _ in range(2):
        run = run_child(command, env=env)
        check_ran(run)
        runs.append((run, read_report(root / "out")))
    (first, first_report), (second, second_report) = runs
    reused = {
        stage: sum(1 for e in second_report["skus"] if str(e["timings"].get(stage, "")).startswith(word))
        for stage, word in (("segment", "cached"), ("render", "cached"), ("qc", "cached"), ("export", "skipped"))
    }
    return {
        "skus": skus,
        "upscaler": upscaler,
        "first_batch_s": first_report["wall_seconds"],
        "rerun_batch_s": second_report["wall_seconds"],
        "first_command_s": round(first.seconds, 2),
        "rerun_command_s": round(second.seconds, 2),
        "ratio_batch": round(second_report["wall_seconds"] / first_report["wall_seconds"], 4),
        "ratio_command": round(second.seconds / first.seconds, 4),
        "counts_first": first_report["counts"],
        "counts_rerun": second_report["counts"],
        "reused_on_rerun": reused,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=25)
    ap.add_argument("--upscaler", default="lanczos", choices=["lanczos", "auto", "realesrgan-x4plus-ncnn"])
    ap.add_argument("--model-dir", type=Path, default=REPO / ".lightbox" / "models")
    ap.add_argument("--workdir", type=Path, help="keep the catalog and outputs here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lightbox-rerun-") as tmp:
        r = run_twice(args.skus, args.workdir or Path(tmp), args.model_dir, args.upscaler)
    print(
        f"first run {r['skus']} SKUs: batch {r['first_batch_s']:.1f} s, command {r['first_command_s']:.1f} s "
        f"({r['counts_first']})"
    )
    print(
        f"re-run {r['skus']} SKUs: batch {r['rerun_batch_s']:.1f} s, command {r['rerun_command_s']:.1f} s "
        f"({r['counts_rerun']})"
    )
    print(f"re-run / first, batch wall time: {r['ratio_batch']:.3f} (target < 0.05)")
    print(f"re-run / first, whole command: {r['ratio_command']:.3f}")
    print(f"reused on re-run (SKUs): {r['reused_on_rerun']}")
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
