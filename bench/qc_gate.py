"""Benchmark the quality gate: QC seconds per image at 2048 px (and the parts).

Builds a synthetic studio composite in numpy (a textured bottle-shaped product on a
grey source photo, placed on a 2048 px white canvas with a soft cast shadow and a
contact shadow), then times ``score_image`` and each metric it runs. One summary line
per figure; ``--json PATH`` also writes them as JSON. The per-metric figures are
standalone calls that check their inputs (~5-8 ms each at 2048 px); inside
``score_image`` the inputs are checked once, in ``QcEvidence``.

Where the work happens: colour fidelity on a grid of <= 384 px across the product,
shadows on the canvas reduced to 256 px, sharpness on the product resampled to 512 px,
batch features at 256 px; edges (normal profiles along the outline) and background
purity at full resolution.

    python bench/qc_gate.py [--size 2048] [--repeat 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quality import (  # noqa: E402
    MARKETPLACE_PROFILES, QcEvidence, QcThresholds, edge_quality, estimate_old_background, image_features,
    placement_matrix, product_colour_fidelity, product_exposure, score_batch, score_image, shadow_geometry,
)
from quality.marketplace import background_purity  # noqa: E402


def _box_blur(img: np.ndarray, r: int) -> np.ndarray:
    """Separable box blur of radius r via cumulative sums (numpy only)."""
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
        hi = np.take(c, np.arange(2 * r + 1, c.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, c.shape[axis] - 2 * r - 1), axis=axis)
        out = (hi - lo) / (2 * r + 1)
    return out


def _bottle(h: int, w: int) -> np.ndarray:
    """Anti-aliased bottle silhouette (body + neck), float coverage, 2x supersampled."""
    yy, xx = np.mgrid[: 2 * h, : 2 * w] / 2.0
    cx = w / 2
    body = (np.abs(xx - cx) < 0.30 * w) & (yy > 0.35 * h) & (yy < 0.95 * h)
    shoulder = ((xx - cx) / (0.30 * w)) ** 2 + ((yy - 0.35 * h) / (0.12 * h)) ** 2 < 1
    neck = (np.abs(xx - cx) < 0.09 * w) & (yy > 0.08 * h) & (yy < 0.35 * h)
    return (body | shoulder | neck).reshape(h, 2, w, 2).mean(axis=(1, 3))


def make_composite(size: int, seed: int = 0, generated: bool = False) -> QcEvidence:
    rng = np.random.default_rng(seed)
    sh, sw = int(size * 0.62), int(size * 0.5)
    mask = _bottle(sh, sw)
    yy, xx = np.mgrid[:sh, :sw]
    tex = 30 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 3, (sh, sw))
    prod = np.clip(np.array([150.0, 60.0, 40.0]) + tex[..., None] * np.array([1.0, 0.7, 0.5]), 0, 255)
    src = mask[..., None] * prod + (1 - mask[..., None]) * np.array([120.0, 125.0, 130.0])
    source_rgb = src.round().astype(np.uint8)

    # Place: product bbox longest side = 85 % of the canvas, centred (corner convention).
    ys, xs = np.nonzero(mask >= 0.5)
    scale = 0.85 * size / (ys.max() - ys.min() + 1)
    ox = size / 2 - scale * (xs.min() + xs.max() + 1) / 2
    oy = size / 2 - scale * (ys.min() + ys.max() + 1) / 2
    # Nearest-neighbour-free bilinear resample of source onto the canvas, in numpy.
    cy, cx = np.mgrid[:size, :size].astype(np.float64)
    sx, sy = (cx + 0.5 - ox) / scale - 0.5, (cy + 0.5 - oy) / scale - 0.5
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    inside = (x0 >= 0) & (y0 >= 0) & (x0 < sw - 1) & (y0 < sh - 1)
    x0, y0 = np.clip(x0, 0, sw - 2), np.clip(y0, 0, sh - 2)

    def warp(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        wfx, wfy = (fx, fy) if a.ndim == 2 else (fx[..., None], fy[..., None])
        top = a[y0, x0] * (1 - wfx) + a[y0, x0 + 1] * wfx
        bot = a[y0 + 1, x0] * (1 - wfx) + a[y0 + 1, x0 + 1] * wfx
        return top * (1 - wfy) + bot * wfy

    alpha = warp(mask) * inside
    prod_c = warp(source_rgb)
    light = 135.0  # upper left: shadow to the lower right
    off = int(0.03 * size)
    cast = np.roll(np.roll(alpha, off, axis=0), off, axis=1)
    dark = 0.35 * _box_blur(cast, max(2, size // 100))
    base = int(np.nonzero(alpha.max(axis=1) >= 0.5)[0].max())
    contact = np.zeros_like(alpha)
    contact[base - 4 : base + max(3, size // 200), :] = alpha[base - 4, :][None, :] > 0.5
    dark = np.maximum(dark, 0.5 * _box_blur(contact, max(2, size // 400)))
    if generated:  # a lifestyle-ish backdrop: warm gradient lit from the upper left
        g = 1.0 - 0.25 * (cx + cy) / (2 * size)
        backdrop = np.stack([235 * g, 225 * g, 205 * g], axis=-1)
    else:
        backdrop = np.full((size, size, 3), 255.0)
    canvas = backdrop * (1 - dark * (1 - alpha))[..., None]
    out = alpha[..., None] * prod_c + (1 - alpha[..., None]) * canvas
    return QcEvidence(
        source_rgb=source_rgb, source_mask=mask.astype(np.float32),
        output_rgb=np.clip(out.round(), 0, 255).astype(np.uint8), output_alpha=alpha.astype(np.float32),
        placement=(scale, ox, oy), background_rgb=None if generated else (255, 255, 255),
        shadow_style=None if generated else "soft", light_direction_deg=None if generated else light,
        grounded=True, encoded_bytes=None if generated else 1_800_000, icc_is_srgb=None if generated else True,
    )


def _time(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), min(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)

    th = QcThresholds()
    rules = MARKETPLACE_PROFILES["amazon-main"]
    ev = make_composite(args.size)
    gen = make_composite(args.size, seed=1, generated=True)
    m = placement_matrix(ev.placement)
    score_image(ev, th, rules)  # warm-up (first-call allocations, lazy imports)

    report = score_image(ev, th, rules)
    figures = {}
    parts = {
        f"score_image studio {args.size}px": lambda: score_image(ev, th, rules),
        f"score_image generated {args.size}px": lambda: score_image(gen, th, MARKETPLACE_PROFILES["generic"]),
        "  colour fidelity (<=384 px grid)": lambda: product_colour_fidelity(
            ev.source_rgb, ev.source_mask, ev.output_rgb, ev.output_alpha, m, pixel_threshold=th.fidelity_pixel_delta_e,
            erode_px=th.fidelity_erode_px, max_side=th.analysis_max_side, min_texture_std=th.sharpness_min_texture_std),
        "  edges, full res (+ old backdrop)": lambda: edge_quality(
            ev.output_rgb, ev.output_alpha, old_background_rgb=estimate_old_background(ev.source_rgb, ev.source_mask),
            profile_px=th.edge_profile_px, rim_px=th.edge_rim_px, ref_px=th.edge_ref_px, halo_delta_l=th.halo_delta_l,
            fringe_weight=th.fringe_weight, fringe_min_separation=th.fringe_min_separation,
            smooth_px=th.edge_smooth_px),
        "  shadow (256 px)": lambda: shadow_geometry(
            ev.output_rgb, ev.output_alpha, background_rgb=ev.background_rgb, light_direction_deg=135.0,
            work_side=th.shadow_work_side, noise_floor=th.shadow_noise_floor, min_mass=th.shadow_min_mass,
            contact_depth_frac=th.contact_depth_frac),
        "  sharpness + exposure (512 px)": lambda: product_exposure(
            ev.output_rgb, ev.output_alpha, analysis_side=th.exposure_analysis_side,
            min_texture_std=th.blur_min_texture_std, clip_high=th.clip_high, clip_low=th.clip_low),
        "  background purity (full res)": lambda: background_purity(
            ev.output_rgb, ev.output_alpha, (255, 255, 255), tolerance=0, border_px=th.border_px),
        "  batch features (256 px)": lambda: image_features(ev.output_rgb, ev.output_alpha, work_side=th.batch_work_side),
    }
    for name, fn in parts.items():
        med, best = _time(fn, args.repeat)
        figures[name.strip()] = {"median_s": med, "min_s": best, "repeat": args.repeat}
        print(f"{name:38s} median {med:.3f} s/img  min {best:.3f} s  (n={args.repeat})")
    feats = [report.features] * 100
    med, best = _time(lambda: score_batch(feats, th), args.repeat)
    figures["score_batch 100 images"] = {"median_s": med, "min_s": best, "repeat": args.repeat}
    print(f"{'score_batch 100 images':38s} median {med:.4f} s      min {best:.4f} s  (n={args.repeat})")
    print(f"{'studio report':38s} status {report.status}, failing {report.failing}, warnings {report.warnings}")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"size": args.size, "cpu_count": os.cpu_count(), "python": platform.python_version(),
                       "figures": figures, "studio_report": report.model_dump()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
