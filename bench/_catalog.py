"""Shared by the bench scripts: generate a catalog of N distinct product photos, and run
``lightbox run`` on it as a child process while sampling its memory.

Photos come from the sample catalog (examples/catalog/images) and scikit-image's bundled
photos, each SKU a different crop, size, flip, exposure and file format, so no two SKUs
share content (and no cache hit between them flatters a figure). Everything is written
under a folder the caller gives (a temporary one): nothing here is ever committed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PHOTOS = ("espresso-cup.png", "logo-sticker.png", "motorcycle.png", "rocket.jpg")
SKIMAGE_PHOTOS = (
    "coffee",
    "chelsea",
    "astronaut",
    "rocket",
    "colorwheel",
    "immunohistochemistry",
    "stereo_motorcycle",
    "logo",
)
STAGES = ("segment", "upscale", "render", "qc", "export")


def base_photos() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) for every base photo: the sample catalog's real ones + skimage's."""
    from skimage import data

    photos = []
    for name in SAMPLE_PHOTOS:
        with Image.open(REPO / "examples" / "catalog" / "images" / name) as im:
            photos.append((name.split(".")[0], np.asarray(im.convert("RGB"))))
    for name in SKIMAGE_PHOTOS:
        pixels = getattr(data, name)()
        if isinstance(pixels, tuple):  # stereo pairs
            pixels = pixels[0]
        if pixels.shape[-1] == 4:  # skimage's logo is RGBA on white
            pixels = pixels[..., :3]
        photos.append((f"sk-{name}", np.ascontiguousarray(pixels)))
    return photos


def generate_catalog(folder: Path, count: int, seed: int = 7) -> Path:
    """Write ``count`` distinct photos and ``manifest.csv`` under ``folder``; return the CSV.

    SKU ``i`` takes base photo ``i % len(bases)``, a random crop keeping 70-100 % of each
    side around the centre, a longest side of 320-1100 px, maybe a mirror, an exposure
    tweak of +-8 %, and JPEG (q 85-95) or PNG.
    """
    rng = np.random.default_rng(seed)
    bases = base_photos()
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    rows = []
    for i in range(count):
        name, rgb = bases[i % len(bases)]
        while True:
            data, ext = _variant(rgb, rng)
            digest = hashlib.sha256(data).hexdigest()
            if digest not in seen:
                break
        seen.add(digest)
        sku = f"BENCH-{i:05d}"
        (images / f"{sku}.{ext}").write_bytes(data)
        rows.append({"sku": sku, "image": f"images/{sku}.{ext}", "title": f"{name} variant {i}"})
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sku", "image", "title"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _variant(rgb: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    h, w = rgb.shape[:2]
    keep_w, keep_h = rng.uniform(0.7, 1.0, 2)
    cw, ch = max(64, int(w * keep_w)), max(64, int(h * keep_h))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = rgb[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = rng.uniform(0.92, 1.08)
    crop = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    side = int(rng.integers(320, 1101))
    scale = side / max(crop.shape[:2])
    size = (max(32, round(crop.shape[1] * scale)), max(32, round(crop.shape[0] * scale)))
    image = Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    if rng.random() < 0.6:
        image.save(buf, format="JPEG", quality=int(rng.integers(85, 96)))
        return buf.getvalue(), "jpg"
    image.save(buf, format="PNG")
    return buf.getvalue(), "png"


# --- running the CLI as a child process, with its memory sampled ----------------------


def _tree_rss_bytes(root: int) -> int:
    """Resident set size of ``root`` and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:  # the process ended while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return total


@dataclass
class ChildRun:
    command: list[str]
    returncode: int
    seconds: float  # whole command, wall clock
    peak_tree_rss_mb: float  # sampled every 0.25 s: the process plus its children, summed
    peak_maxrss_mb: float  # getrusage via wait4: the largest single process in the tree
    stdout: str
    stderr: str
    samples: int = field(default=0)


def run_child(command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> ChildRun:
    """Run ``command``, sampling the tree's RSS; wait4 gives the kernel's peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(proc.pid))
            peak[1] += 1
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda s=s, k=k: out_chunks.__setitem__(k, s.read()), daemon=True)
        for s, k in ((proc.stdout, "out"), (proc.stderr, "err"))
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(
        command=command,
        returncode=proc.returncode,
        seconds=time.perf_counter() - started,
        peak_tree_rss_mb=peak[0] / 2**20,
        peak_maxrss_mb=usage.ru_maxrss / 1024,
        stdout=out_chunks.get("out", b"").decode("utf-8", "replace"),
        stderr=out_chunks.get("err", b"").decode("utf-8", "replace"),
        samples=peak[1],
    )


def lightbox_command(
    manifest: Path, out: Path, data_dir: Path, model_dir: Path, upscaler: str, extra: list[str] | None = None
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "deployments.cli",
        "run",
        str(manifest),
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--model-dir",
        str(model_dir.resolve()),
        "--upscaler",
        upscaler,
        *(extra or []),
    ]


def child_env(prefect_home: Path) -> dict[str, str]:
    """The CLI's environment: its own Prefect home (temporary API database), quiet logs."""
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(prefect_home)
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    env.setdefault("PYTHONPATH", str(REPO))
    return env


def check_ran(run: ChildRun) -> None:
    if run.returncode != 0:
        raise SystemExit(f"command failed ({run.returncode}): {' '.join(run.command)}\n{run.stderr[-3000:]}")


def read_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def stage_medians(report: dict) -> dict[str, dict]:
    """Per stage: median seconds over the SKUs that computed it, and how many were cached."""
    figures = {}
    for stage in STAGES:
        values = [e["timings"].get(stage) for e in report["skus"] if stage in e["timings"]]
        numbers = [v for v in values if isinstance(v, (int, float))]
        figures[stage] = {
            "median_s": round(statistics.median(numbers), 4) if numbers else None,
            "computed": len(numbers),
            "reused": len(values) - len(numbers),
        }
    return figures


# --- clean generated products (bench/qc_corpus.py) for the render-path benchmarks -------


def generate_products(folder: Path, count: int, camera: tuple[int, int] | None = None, seed: int = 11) -> Path:
    """Write ``count`` corpus products (each a different shape, material, colour, size and
    backdrop; a correctly cut product passes the gate; medium and large ones only) as JPEG
    q92 photos and a manifest.

    ``camera=(w, h)``: each photo is enlarged to fit the camera frame and its border
    replicated out to exactly w x h, as a studio shot at camera resolution would be."""
    import _corpus_products  # noqa: PLC0415 (imports the corpus only when asked)
    from qc_corpus import _product  # noqa: PLC0415

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    # Medium and large products only: a small one needs 4-6x enlargement, which the gate
    # refuses from classical resampling (a rejection the script would not make). One at a
    # time: this process's peak memory is inherited by the children it measures (Linux
    # carries a process's peak RSS across fork and exec).
    chosen = (i for i in range(10 * count + 10) if _corpus_products.choose(seed, i)["attrs"]["size"] != "small")
    for i, index in zip(range(count), chosen, strict=False):
        product = _product(seed, index)
        rgb = product.source_rgb
        if camera is not None:
            import cv2  # noqa: PLC0415

            w, h = camera
            scale = min(w / rgb.shape[1], h / rgb.shape[0])
            size = (min(w, round(rgb.shape[1] * scale)), min(h, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
            top, left = (h - size[1]) // 2, (w - size[0]) // 2
            rgb = cv2.copyMakeBorder(rgb, top, h - size[1] - top, left, w - size[0] - left, cv2.BORDER_REPLICATE)
        sku = f"PROD-{i:05d}"
        Image.fromarray(rgb).save(images / f"{sku}.jpg", quality=92)
        rows.append(
            {"sku": sku, "image": f"images/{sku}.jpg", "title": product.name, "template": product.attrs["template"]}
        )
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sku", "image", "title", "template"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
