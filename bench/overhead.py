"""Orchestration overhead: the same batch through the Prefect flow vs a plain Python loop.

Both sides run in this process on one generated catalog (bench/_catalog.py), one render
attempt per SKU (``max_attempts=1``), classical upscaling, the CLI's three profiles, the
u2netp model loaded once beforehand. The loop calls the same imaging/ and quality/
functions the tasks call, in the same order, with the same 8-bit hand-offs the tasks make
through their work PNGs — decode, segment + refine, crop, compose per profile, encode,
QC — and writes the passing SKUs' files; no Prefect, no database, no caches. The flow
adds everything else a batch does (catalog DB, work files, result cache, retries,
bookkeeping, batch consistency, report + contact sheet). Its time is the
``catalog_batch`` call with the temporary Prefect API already started.

    python bench/overhead.py [--skus 100] [--json out.json]      (target: ratio < 1.15)

The two sides' files are compared byte for byte: the figure is only a ratio of like work
when they match.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from _catalog import REPO, generate_catalog  # noqa: E402
from catalog.manifest import load_manifest  # noqa: E402
from catalog.paths import sku_dirname  # noqa: E402
from imaging.compose import compose_studio, crop_to_product, product_bbox  # noqa: E402
from imaging.decode import decode_image  # noqa: E402
from imaging.errors import ImageRejected  # noqa: E402
from imaging.profiles import BUILTIN_PROFILES, encode_for_profile, profile_canvas  # noqa: E402
from imaging.refine import refine_mask  # noqa: E402
from imaging.segment import load_segmenter, mask_confidence  # noqa: E402
from imaging.templates import get_template, load_templates  # noqa: E402
from imaging.types import Composite, Placement  # noqa: E402
from quality.gate import QcEvidence, score_image  # noqa: E402
from quality.thresholds import MarketplaceRules, QcThresholds  # noqa: E402

PROFILES = ["amazon-main", "shopify", "transparent"]
TEMPLATE = "white_studio"
CROP_MARGIN, CROP_SNAP = 8, 32  # tasks/render.py


def to8(mask: np.ndarray) -> np.ndarray:
    """The 8-bit hand-off the tasks make through a work PNG."""
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rules_for(profile) -> MarketplaceRules:
    """tasks/score.py's marketplace_rules, repeated so this side imports no Prefect."""
    return MarketplaceRules(
        name=profile.name, background_rgb=(255, 255, 255) if profile.background == "white" else None,
        fill_target=profile.fill if profile.background != "transparent" else None,
        min_longest_side=profile.min_side, max_longest_side=profile.max_side,
        max_megapixels=profile.max_megapixels, require_srgb=profile.icc, max_file_bytes=profile.max_bytes)


def plain_sku(image: Path, segmenter, template, thresholds: QcThresholds) -> tuple[str, dict]:
    """(status, {profile or "mask": bytes}) for one photo: passed | qc_failed | failed."""
    data = image.read_bytes()
    try:
        decoded = decode_image(data, name=image.name)
    except ImageRejected:
        return "failed", {}
    rgb = decoded.rgb
    if decoded.alpha is not None and (decoded.alpha < 250).mean() > 0.01:
        mask, confidence, cut_out = decoded.alpha.astype(np.float32) / 255.0, None, True
    else:
        raw = segmenter.predict(rgb)
        mask, confidence, cut_out = refine_mask(rgb, raw, strength=1), mask_confidence(raw), False
    if float(mask.max()) < 0.5:
        return "failed", {}
    mask8 = to8(mask)
    source_mask = mask8.astype(np.float32) / 255.0
    confidence = mask_confidence(source_mask) if confidence is None else confidence

    crop, crop_alpha, to_crop = crop_to_product(rgb, source_mask, CROP_MARGIN, snap_px=CROP_SNAP)
    alpha = to8(crop_alpha).astype(np.float32) / 255.0  # the cut-out PNG's alpha
    x0, y0, x1, y1 = product_bbox(alpha)
    files, failing = {}, []
    for name in PROFILES:
        profile = BUILTIN_PROFILES[name]
        spec = profile_canvas(profile, template.to_background(), template.to_shadow(),
                              product_size=(x1 - x0, y1 - y0))
        fill = template.fill if profile.background == "template" else spec.fill
        composite = compose_studio(crop, alpha, canvas_size=spec.size, background=spec.background,
                                   shadow=spec.shadow, fill=fill, transparent=spec.transparent,
                                   to_source=to_crop)
        alpha8 = to8(composite.product_alpha)
        out_alpha = alpha8.astype(np.float32) / 255.0
        encoded = encode_for_profile(profile, Composite(rgb=composite.rgb, product_alpha=out_alpha,
                                                        placement=composite.placement))
        p = composite.placement
        drawn = composite.shadow if not spec.transparent else None
        solid = (composite.background is not None and composite.background.kind == "solid"
                 and not spec.transparent)
        evidence = QcEvidence(
            source_rgb=rgb, source_mask=source_mask, output_rgb=composite.rgb, output_alpha=out_alpha,
            placement=(p.scale, p.offset_x, p.offset_y),
            background_rgb=tuple(composite.background.colour) if solid else None,
            shadow_style=drawn.style if drawn else None,
            light_direction_deg=drawn.light_direction_deg if drawn else None,
            grounded=(drawn.style if drawn else None) != "floating", encoded_bytes=len(encoded),
            icc_is_srgb=profile.icc, old_background_known=not cut_out)
        report = score_image(evidence, thresholds, rules_for(profile))
        failing += report.failing
        if confidence < thresholds.segment_confidence_min:
            failing.append("segment.confidence")
        files[name] = encoded
    if failing:
        return "qc_failed", {}
    ok, png = cv2.imencode(".png", mask8, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    files["mask"] = png.tobytes()
    return "passed", files


def plain_batch(manifest: Path, out: Path, model_dir: Path) -> dict[str, str]:
    segmenter = load_segmenter("u2netp", model_dir)
    template = get_template(TEMPLATE, load_templates([]))
    thresholds = QcThresholds()
    states = {}
    for entry in load_manifest(manifest).entries:
        status, files = plain_sku(entry.image, segmenter, template, thresholds)
        states[entry.sku] = status
        folder = out / sku_dirname(entry.sku)
        for name, data in files.items():
            folder.mkdir(parents=True, exist_ok=True)
            filename = "mask.png" if name == "mask" else BUILTIN_PROFILES[name].filename()
            (folder / filename).write_bytes(data)
    return states


def flow_batch(manifest: Path, out: Path, settings) -> dict:
    from flows.catalog_batch import catalog_batch

    return catalog_batch(manifest=str(manifest), out_dir=str(out), settings=settings, name="overhead",
                         template=TEMPLATE, profiles=PROFILES)


def same_files(a: Path, b: Path) -> tuple[int, int]:
    """(identical, compared) over the files both output folders hold."""
    def sums(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in root.rglob("*") if p.is_file() and p.parent != root}
    left, right = sums(a), sums(b)
    common = set(left) & set(right)
    return sum(left[k] == right[k] for k in common), len(common)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=100)
    ap.add_argument("--model-dir", type=Path, default=REPO / ".lightbox" / "models")
    ap.add_argument("--workdir", type=Path, help="keep the catalog and outputs here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lightbox-overhead-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        (root / "prefect-home").mkdir(parents=True, exist_ok=True)
        # Prefect reads its settings at import: point it at this run's folders first.
        os.environ["PREFECT_HOME"] = str(root / "prefect-home")
        os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(root / "data" / "results")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        from prefect import flow

        from tasks.records import RunSettings

        manifest = generate_catalog(root / "catalog", args.skus)
        model_dir = args.model_dir.resolve()
        settings = RunSettings(data_dir=root / "data", database_url=f"sqlite:///{root / 'catalog.db'}",
                               model_dir=model_dir, upscaler="lanczos", max_attempts=1)
        flow(name="warm-up")(lambda: None)()  # starts the temporary Prefect API
        load_segmenter("u2netp", model_dir)  # both sides then share the loaded model

        loads = [os.getloadavg()[0]]  # other work on the machine skews a ratio: say how busy it was
        started = time.perf_counter()
        report = flow_batch(manifest, root / "out-flow", settings)
        flow_s = time.perf_counter() - started
        loads.append(os.getloadavg()[0])
        started = time.perf_counter()
        states = plain_batch(manifest, root / "out-plain", model_dir)
        plain_s = time.perf_counter() - started
        loads.append(os.getloadavg()[0])
        identical, compared = same_files(root / "out-flow", root / "out-plain")

    flow_passed = report["counts"]["exported"]
    plain_passed = sum(s == "passed" for s in states.values())
    result = {"skus": args.skus, "flow_s": round(flow_s, 2),
              "plain_s": round(plain_s, 2), "ratio": round(flow_s / plain_s, 4), "flow_counts": report["counts"],
              "plain_passed": plain_passed, "identical_files": identical, "compared_files": compared,
              "cpu_count": os.cpu_count(), "load_average_before_flow_after_flow_after_loop": loads}
    print(f"flow {args.skus} SKUs: {flow_s:.1f} s ({report['counts']})")
    print(f"plain loop {args.skus} SKUs: {plain_s:.1f} s ({plain_passed} passed)")
    print(f"flow / plain loop: {result['ratio']:.3f} (target < 1.15)")
    print(f"same work: {identical} of {compared} output files byte-identical; "
          f"SKUs passing: flow {flow_passed}, loop {plain_passed}")
    print(f"machine: {os.cpu_count()} cpus, 1-min load average {loads[0]:.1f} before the flow, "
          f"{loads[1]:.1f} after it, {loads[2]:.1f} after the loop")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
