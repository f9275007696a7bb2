"""Segmentation quality on composites with KNOWN masks: raw u2netp vs. refined.

Each case pastes a synthetic product of known shape (ellipse, rounded box, bottle, pill,
disc with a hole, a pair, a furry plush) with colour, shading and a texture label onto a real
background from skimage's bundled sample photos (brick, grass, gravel, coffee, chelsea,
astronaut, rocket crops) or a studio sweep, adds a cast shadow (not part of the mask),
sensor noise and a JPEG round trip. The ground-truth alpha is rendered at 4x and
area-downsampled, so edges are anti-aliased like a real photo.

Two sets: "product-photo" (studio sweep, sharp real textures, defocused real photos: the
conditions of a product shot) and "salient-clutter" (sharp photos whose own subjects,
a cup, a cat, an astronaut, compete with the product: a salient-object model's known
failure mode, reported apart so it does not hide in a median).

Metrics per case: IoU of (mask > 0.5) vs. (truth > 0.5); the boundary F-score
(precision/recall of boundary pixels within ``--tol`` px of the other boundary); the
edge alpha error (mean |alpha - truth| within 4 px of the true edge: halo and fringe);
and the raw mask's confidence, summarised for good (IoU >= 0.95) vs. failed (< 0.9) cuts.

    python bench/segmentation_quality.py --model-dir .lightbox/models [--json out.json]

Needs the u2netp weights (``lightbox models fetch`` or imaging.weights.fetch_weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imaging.refine import refine_mask  # noqa: E402
from imaging.segment import OnnxSalientSegmenter, mask_confidence  # noqa: E402

SS = 4  # supersampling factor for the ground-truth alpha


def _gray3(a: np.ndarray, tint: tuple[float, float, float]) -> np.ndarray:
    return np.clip(a[..., None].astype(np.float32) * np.asarray(tint, np.float32), 0, 255)


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    def crop(img: np.ndarray) -> np.ndarray:
        img = img if img.ndim == 3 else img[..., None].repeat(3, axis=2)
        s = max(h / img.shape[0], w / img.shape[1], 1.0)
        if s > 1.0:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        y = int(rng.integers(0, img.shape[0] - h + 1))
        x = int(rng.integers(0, img.shape[1] - w + 1))
        return img[y : y + h, x : x + w].astype(np.float32)

    if kind == "studio":
        top, bottom = rng.uniform(200, 245), rng.uniform(160, 215)
        ramp = np.linspace(top, bottom, h, dtype=np.float32)[:, None, None]
        tint = np.asarray(rng.uniform(0.95, 1.03, 3), np.float32)
        return np.broadcast_to(ramp * tint, (h, w, 3)).copy()
    if kind in ("brick", "grass", "gravel"):
        tint = {"brick": (1.1, 0.85, 0.7), "grass": (0.8, 1.05, 0.7), "gravel": (1.0, 0.97, 0.92)}[kind]
        return crop(_gray3(getattr(data, kind)(), tint))
    if kind.endswith("-sharp"):
        return crop(getattr(data, kind[: -len("-sharp")])())
    # a lifestyle backdrop as a product photo shows it: shot at the product's focus, so
    # the scene behind is defocused
    return cv2.GaussianBlur(crop(getattr(data, kind)()), (0, 0), float(rng.uniform(2.5, 5.0)))


def _shape_mask(shape: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Binary product mask at SS x resolution (uint8 0/255)."""
    H, W = h * SS, w * SS
    m = np.zeros((H, W), np.uint8)
    cx, cy = W * rng.uniform(0.42, 0.58), H * rng.uniform(0.45, 0.58)
    a, b = W * rng.uniform(0.16, 0.3), H * rng.uniform(0.18, 0.32)
    if shape == "ellipse":
        cv2.ellipse(m, (int(cx), int(cy)), (int(a), int(b)), float(rng.uniform(-30, 30)), 0, 360, 255, -1)
    elif shape in ("box", "pair"):
        r = int(min(a, b) * 0.25)
        boxes = [(cx, a)] if shape == "box" else [(cx - a * 0.75, a * 0.6), (cx + a * 0.75, a * 0.6)]
        for bx, ba in boxes:
            x0, x1, y0, y1 = int(bx - ba), int(bx + ba), int(cy - b), int(cy + b)
            cv2.rectangle(m, (x0 + r, y0), (x1 - r, y1), 255, -1)
            cv2.rectangle(m, (x0, y0 + r), (x1, y1 - r), 255, -1)
            for px, py in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
                cv2.circle(m, (px, py), r, 255, -1)
    elif shape == "bottle":
        bw, bh = a * 0.7, b * 1.25
        top = int(cy - bh * 0.35)
        cv2.rectangle(m, (int(cx - bw), top), (int(cx + bw), int(cy + bh * 0.75)), 255, -1)
        cv2.ellipse(m, (int(cx), top), (int(bw), int(bw * 0.6)), 0, 180, 360, 255, -1)
        neck = int(bw * 0.35)
        cv2.rectangle(m, (int(cx) - neck, int(cy - bh * 0.95)), (int(cx) + neck, top), 255, -1)
    elif shape == "pill":
        r = int(b * 0.45)
        cv2.line(m, (int(cx - a * 0.9), int(cy)), (int(cx + a * 0.9), int(cy - b * 0.5)), 255, 2 * r)
    elif shape == "ring":
        cv2.circle(m, (int(cx), int(cy)), int(min(a, b) * 1.1), 255, -1)
        cv2.circle(m, (int(cx), int(cy)), int(min(a, b) * 0.45), 0, -1)
    elif shape == "fur":  # a plush toy / fur hat: strands 1-3 source px long, sub-pixel wide
        cv2.ellipse(m, (int(cx), int(cy)), (int(a), int(b)), 0.0, 0, 360, 255, -1)
        for t in rng.uniform(0, 2 * np.pi, 900):
            x0, y0 = cx + a * np.cos(t), cy + b * np.sin(t)
            ln = rng.uniform(4, 14) * SS
            dt = t + rng.uniform(-0.5, 0.5)
            cv2.line(
                m,
                (int(x0), int(y0)),
                (int(x0 + ln * np.cos(dt)), int(y0 + ln * np.sin(dt))),
                255,
                int(rng.integers(1, 3)),
            )
    else:
        raise ValueError(shape)
    return m


def make_case(shape: str, bg: str, seed: int, size: tuple[int, int] = (448, 512)):
    """(rgb uint8, truth alpha float32) for one composite."""
    rng = np.random.default_rng(seed)
    h, w = size
    back = _background(bg, h, w, rng)
    big = _shape_mask(shape, h, w, rng)
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    # cast shadow: the silhouette, offset down-right, blurred, darkening the backdrop
    dx, dy = int(rng.integers(4, 18)), int(rng.integers(6, 20))
    shadow = cv2.GaussianBlur(np.roll(alpha, (dy, dx), axis=(0, 1)), (0, 0), rng.uniform(3, 9))
    back = back * (1.0 - rng.uniform(0.25, 0.5) * shadow[..., None])
    # product: base colour, vertical shading, a textured label from a real photo
    base = rng.uniform(20, 235, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 0.75 + 0.45 * np.cos((xx / w - 0.45) * np.pi * 1.6)[..., None]
    prod = base * shade
    label_src = [data.coffee, data.chelsea, data.astronaut, data.rocket][seed % 4]()
    label = cv2.resize(label_src, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    ys, xs = np.nonzero(alpha > 0.5)
    band = (yy > ys.min() + 0.35 * np.ptp(ys)) & (yy < ys.min() + 0.65 * np.ptp(ys))
    prod = np.where(band[..., None], 0.35 * prod + 0.65 * label, prod)
    rgb = alpha[..., None] * prod + (1 - alpha[..., None]) * back
    rgb += rng.normal(0, 3.0, rgb.shape)
    rgb8 = np.clip(rgb, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
    rgb8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return rgb8, alpha.astype(np.float32)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0.5, truth > 0.5
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def boundary_f(pred: np.ndarray, truth: np.ndarray, tol: float = 2.0) -> float:
    def edge(b: np.ndarray) -> np.ndarray:
        b = b.astype(np.uint8)
        return (b - cv2.erode(b, np.ones((3, 3), np.uint8))) > 0

    ep, et = edge(pred > 0.5), edge(truth > 0.5)
    if not ep.any() or not et.any():
        return float(ep.any() == et.any())
    dist_t = cv2.distanceTransform((~et).astype(np.uint8), cv2.DIST_L2, 5)
    dist_p = cv2.distanceTransform((~ep).astype(np.uint8), cv2.DIST_L2, 5)
    precision = float((dist_t[ep] <= tol).mean())
    recall = float((dist_p[et] <= tol).mean())
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


SHAPES = ["ellipse", "box", "bottle", "pill", "ring", "pair", "fur"]
# studio sweep, sharp real textures, defocused real photos (product-photo conditions)
BACKGROUNDS = ["studio", "brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket"]
# sharp real photos whose own salient objects (cup, cat, astronaut) compete with the product
HARD_BACKGROUNDS = ["coffee-sharp", "chelsea-sharp", "astronaut-sharp", "rocket-sharp"]


def cases(backgrounds: list[str] = BACKGROUNDS) -> list[tuple[str, str, int]]:
    """Every shape on every background, seeds fixed."""
    return [(s, b, 100 * i + j) for i, s in enumerate(SHAPES) for j, b in enumerate(backgrounds)]


def edge_alpha_error(pred: np.ndarray, truth: np.ndarray, within: float = 4.0) -> float:
    """Mean |alpha - truth| over pixels within ``within`` px of the true edge (halo/fringe)."""
    t = (truth > 0.5).astype(np.uint8)
    edge = (t - cv2.erode(t, np.ones((3, 3), np.uint8))) > 0
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)
    near = dist <= within
    return float(np.abs(pred - truth)[near].mean()) if near.any() else 0.0


METRICS = ("iou", "bf", "edge_err")


def evaluate(
    seg: OnnxSalientSegmenter, backgrounds: list[str], tol: float, strength: int, matting: bool
) -> tuple[list[dict], float, float]:
    rows, t_seg, t_ref = [], 0.0, 0.0
    for shape, bg, seed in cases(backgrounds):
        rgb, truth = make_case(shape, bg, seed)
        t0 = time.perf_counter()
        raw = seg.predict(rgb)
        t1 = time.perf_counter()
        ref = refine_mask(rgb, raw, strength=strength, matting=matting)
        t_seg, t_ref = t_seg + t1 - t0, t_ref + time.perf_counter() - t1
        row: dict = {"case": f"{shape}/{bg}", "confidence": mask_confidence(raw)}
        for tag, m in (("raw", raw), ("refined", ref)):
            row[f"iou_{tag}"] = iou(m, truth)
            row[f"bf_{tag}"] = boundary_f(m, truth, tol)
            row[f"edge_err_{tag}"] = edge_alpha_error(m, truth)
        rows.append(row)
    return rows, t_seg / len(rows), t_ref / len(rows)


def summarise(rows: list[dict]) -> dict:
    col = {k: np.asarray([r[k] for r in rows]) for k in rows[0] if k != "case"}
    out: dict = {"cases": len(rows)}
    for m in METRICS:
        for tag in ("raw", "refined"):
            out[f"median_{m}_{tag}"] = float(np.median(col[f"{m}_{tag}"]))
            out[f"min_{m}_{tag}"] = float(col[f"{m}_{tag}"].min())
    out["refined_worse_iou"] = int((col["iou_refined"] < col["iou_raw"]).sum())
    out["refined_worse_bf"] = int((col["bf_refined"] < col["bf_raw"]).sum())
    out["max_iou_drop"] = float(max(0.0, (col["iou_raw"] - col["iou_refined"]).max()))
    good, bad = col["iou_raw"] >= 0.95, col["iou_raw"] < 0.9
    out["median_confidence_good"] = float(np.median(col["confidence"][good])) if good.any() else None
    out["median_confidence_failed"] = float(np.median(col["confidence"][bad])) if bad.any() else None
    out["failed_cases"] = int(bad.sum())
    return out


def run(model_dir: Path, tol: float, strength: int, matting: bool) -> dict:
    seg = OnnxSalientSegmenter("u2netp", model_dir, refine_strength=0)
    result: dict = {"tolerance_px": tol, "strength": strength, "matting": matting, "sets": {}}
    for set_name, bgs in (("product-photo", BACKGROUNDS), ("salient-clutter", HARD_BACKGROUNDS)):
        rows, t_seg, t_ref = evaluate(seg, bgs, tol, strength, matting)
        summary = summarise(rows)
        summary.update(seconds_per_image_segment=t_seg, seconds_per_image_refine=t_ref)
        result["sets"][set_name] = {"summary": summary, "cases": rows}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=Path(".lightbox/models"))
    ap.add_argument("--tol", type=float, default=2.0, help="boundary F-score tolerance in px")
    ap.add_argument("--strength", type=int, default=1)
    ap.add_argument("--matting", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="one line per case as well")
    ap.add_argument("--json", type=Path, help="write the summaries and per-case rows here")
    args = ap.parse_args(argv)
    result = run(args.model_dir, args.tol, args.strength, args.matting)
    for set_name, res in result["sets"].items():
        s = res["summary"]
        if args.verbose:
            for r in res["cases"]:
                print(
                    f"  {r['case']:22s} IoU {r['iou_raw']:.4f} -> {r['iou_refined']:.4f}  "
                    f"BF {r['bf_raw']:.4f} -> {r['bf_refined']:.4f}  conf {r['confidence']:.3f}"
                )
        print(
            f"[{set_name}] {s['cases']} cases (shape x background, shadow + noise + JPEG), "
            f"strength {args.strength}, matting {args.matting}"
        )
        print(
            f"[{set_name}] IoU median raw {s['median_iou_raw']:.4f} -> refined "
            f"{s['median_iou_refined']:.4f}; min {s['min_iou_raw']:.4f} -> {s['min_iou_refined']:.4f}"
        )
        print(
            f"[{set_name}] boundary F@{args.tol:g}px median raw {s['median_bf_raw']:.4f} -> "
            f"refined {s['median_bf_refined']:.4f}"
        )
        print(
            f"[{set_name}] edge alpha error (<=4 px from the true edge) median raw "
            f"{s['median_edge_err_raw']:.4f} -> refined {s['median_edge_err_refined']:.4f}"
        )
        print(
            f"[{set_name}] refined worse than raw: IoU {s['refined_worse_iou']} "
            f"(largest drop {s['max_iou_drop']:.4f}), boundary F {s['refined_worse_bf']}"
        )
        conf_failed = s["median_confidence_failed"]
        print(
            f"[{set_name}] confidence median: raw IoU >= 0.95 {s['median_confidence_good']:.3f}, "
            f"raw IoU < 0.9 ({s['failed_cases']} cases) " + ("-" if conf_failed is None else f"{conf_failed:.3f}")
        )
        print(
            f"[{set_name}] seconds/image: segment {s['seconds_per_image_segment']:.3f}, "
            f"refine {s['seconds_per_image_refine']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
