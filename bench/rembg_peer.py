"""Background removal: rembg's own batch CLI vs Lightbox's segmentation stage, same model.

Both sides run the same u2netp ONNX weights (our checksummed ``u2netp.onnx``; rembg's
published md5 for u2netp is the same file) over the same generated photos
(bench/_catalog.py), each as a child process, one image at a time on all cores:

* rembg: ``rembg p -m u2netp IN OUT`` (a cut-out PNG per photo), and with ``--only-mask``
  (a mask PNG per photo: the like-for-like output). rembg is pointed at our weights with
  ``U2NET_HOME`` (rembg's ``resolve_existing`` looks there before it would download), so
  it runs offline; ``MODEL_CHECKSUM_DISABLED`` stays unset, so a different file could not
  pass silently — it would try to download and fail.
* Lightbox: the segmentation stage's work — safe decode, u2netp, guided-filter refinement,
  8-bit mask PNG — with the functions ``tasks/segment.py`` calls, without Prefect (the
  orchestration cost is bench/throughput.py --floor's figure).

Each command runs once to warm up, then over 1 photo and over N photos: the whole-command
times include start-up (imports, model load); the per-photo time is (T_N - T_1) / (N - 1).

    python bench/rembg_peer.py /tmp/rembg-venv/bin/rembg [--images 20] [--json out.json]

rembg is not a Lightbox dependency: install it into a throwaway venv, e.g.
``python3.11 -m venv /tmp/rembg-venv && /tmp/rembg-venv/bin/pip install 'rembg[cli,cpu]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _catalog import REPO, generate_catalog, run_child  # noqa: E402


def segment_folder(source: Path, target: Path, model_dir: Path) -> None:
    """Lightbox's segmentation stage over every photo in ``source`` (run as a child)."""
    import cv2
    import numpy as np

    from imaging.decode import decode_file
    from imaging.refine import refine_mask
    from imaging.segment import load_segmenter

    segmenter = load_segmenter("u2netp", model_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        rgb = decode_file(path).rgb
        mask = refine_mask(rgb, segmenter.predict(rgb), strength=1)
        ok, png = cv2.imencode(
            ".png", np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1]
        )
        (target / f"{path.stem}.png").write_bytes(png.tobytes())


def timed_pair(make_command, one: Path, many: Path, out: Path, env: dict[str, str], count: int) -> dict:
    """Warm-up on one photo (first-run byte-compiling and JIT caches are not the figure),
    then timed on one photo and on all of them."""
    runs = {}
    for label, folder in (("warm-up", one), ("one", one), ("many", many)):
        target = out / label
        shutil.rmtree(target, ignore_errors=True)
        run = run_child(make_command(folder, target), env=env)
        if run.returncode != 0:
            raise SystemExit(f"command failed ({run.returncode}): {' '.join(run.command)}\n{run.stderr[-3000:]}")
        written = len(list(target.glob("*.png")))
        expected = count if label == "many" else 1
        if written != expected:
            raise SystemExit(f"{' '.join(run.command)} wrote {written} files, expected {expected}")
        runs[label] = run.seconds
    return {
        "command_1_s": round(runs["one"], 2),
        "command_n_s": round(runs["many"], 2),
        "per_image_s": round((runs["many"] - runs["one"]) / (count - 1), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rembg", type=Path, help="the rembg command (e.g. /tmp/rembg-venv/bin/rembg)")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--model-dir", type=Path, default=REPO / ".lightbox" / "models")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--segment-folder", nargs=2, type=Path, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    model_dir = args.model_dir.resolve()
    if args.segment_folder:
        segment_folder(*args.segment_folder, model_dir)
        return 0
    if not (args.rembg.is_file() and os.access(args.rembg, os.X_OK)):
        sys.stderr.write(
            f"rembg command not found or not executable: {args.rembg}\n"
            "install it in a throwaway venv: python3.11 -m venv /tmp/rembg-venv && "
            "/tmp/rembg-venv/bin/pip install 'rembg[cli,cpu]'\n"
        )
        return 2
    weights = model_dir / "u2netp.onnx"
    if not weights.is_file():
        sys.stderr.write(f"missing {weights}: run `lightbox models fetch`\n")
        return 2
    if args.images < 2:
        sys.stderr.write("--images must be at least 2 (the per-image time is a difference)\n")
        return 2

    with tempfile.TemporaryDirectory(prefix="lightbox-rembg-") as tmp:
        root = Path(tmp)
        generate_catalog(root / "catalog", args.images)
        many = root / "catalog" / "images"
        one = root / "one"
        one.mkdir()
        first = sorted(many.iterdir())[0]
        shutil.copy(first, one / first.name)
        home = root / "u2net-home"  # rembg's legacy model folder: it finds u2netp.onnx here
        home.mkdir()
        os.symlink(weights, home / "u2netp.onnx")
        rembg_env = {k: v for k, v in os.environ.items() if k != "MODEL_CHECKSUM_DISABLED"}
        rembg_env.update(U2NET_HOME=str(home), REMBG_HOME=str(root / "rembg-home"))
        ours_env = dict(os.environ, PYTHONPATH=str(REPO))

        results = {"images": args.images, "cpu_count": os.cpu_count()}
        results["rembg_cutout"] = timed_pair(
            lambda src, dst: [str(args.rembg), "p", "-m", "u2netp", str(src), str(dst)],
            one,
            many,
            root / "rembg-cutout",
            rembg_env,
            args.images,
        )
        results["rembg_mask"] = timed_pair(
            lambda src, dst: [str(args.rembg), "p", "-m", "u2netp", "-om", str(src), str(dst)],
            one,
            many,
            root / "rembg-mask",
            rembg_env,
            args.images,
        )
        results["lightbox"] = timed_pair(
            lambda src, dst: [
                sys.executable,
                str(Path(__file__).resolve()),
                str(args.rembg),
                "--model-dir",
                str(model_dir),
                "--segment-folder",
                str(src),
                str(dst),
            ],
            one,
            many,
            root / "lightbox",
            ours_env,
            args.images,
        )
        downloaded = list((root / "rembg-home").rglob("*.onnx"))
        if downloaded:
            raise SystemExit(f"rembg fetched weights instead of using ours: {downloaded}")

    lb, cut, mask = results["lightbox"], results["rembg_cutout"], results["rembg_mask"]
    results["ratio_per_image_vs_mask"] = round(lb["per_image_s"] / mask["per_image_s"], 3)
    results["ratio_per_image_vs_cutout"] = round(lb["per_image_s"] / cut["per_image_s"], 3)
    results["ratio_command_vs_mask"] = round(lb["command_n_s"] / mask["command_n_s"], 3)
    for label, r in (("rembg p (cut-out)", cut), ("rembg p --only-mask", mask), ("lightbox segment", lb)):
        print(
            f"{label:22s} {r['per_image_s']:.3f} s per image; command {r['command_n_s']:.1f} s for "
            f"{args.images} images, {r['command_1_s']:.1f} s for 1"
        )
    print(f"lightbox / rembg --only-mask, per image: {results['ratio_per_image_vs_mask']:.2f}")
    print(f"lightbox / rembg cut-out, per image: {results['ratio_per_image_vs_cutout']:.2f}")
    print(f"lightbox / rembg --only-mask, whole command ({args.images} images): {results['ratio_command_vs_mask']:.2f}")
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
