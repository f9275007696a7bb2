"""Calibrate the quality gate on a labelled corpus: false rejects, catch rates, ROC points.

The corpus (bench/qc_corpus.py) is generated products on real textures, each rendered
clean from its true mask through the real compositor, and with one defect injected at
graded severity. Every case runs through ``quality.gate.score_sku`` with the thresholds in
force (``QcThresholds()``), and this prints, in one run:

1. the whole gate: false-reject rate on clean renders; per defect class and severity the
   share caught (failed) and the share *named right* (a failing check of that class);
2. per check: its false-reject rate on clean renders and its catch rate on the visible
   cases of the defects it is meant to catch, at the threshold in force and at ROC points
   (the clean distribution's upper quantiles), with the most sensitive candidate that keeps
   the check's false rejects within ``--check-frr``.

The thresholds in ``quality/thresholds.py`` were picked from this table; their field
descriptions quote it. ``--model-dir`` adds the segmenter's own cuts of the generated
photos: a cut with IoU < 0.98 against the truth is a defect to catch, not a clean case.

    python bench/qc_calibration.py [--products 90] [--per-product 1] [--model-dir DIR] [--json out.json]
    python bench/qc_calibration.py --defects fringe,lost_part --products 30 --seed 13

(about 4 minutes on 2 cores with --model-dir). With --per-product 1 each class lands on a
tenth of the products or so, a dozen visible cases a seed; ``--defects`` draws the named
classes on every product, for a class's rate over many products and backdrops.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import qc_corpus  # noqa: E402
from bench._corpus_defects import enclosed_holes  # noqa: E402
from bench.qc_gate import gate_evidence  # noqa: E402
from imaging.profiles import BUILTIN_PROFILES  # noqa: E402
from quality.checks import confidence_check  # noqa: E402
from quality.gate import QcEvidence, score_sku  # noqa: E402
from quality.thresholds import QcThresholds  # noqa: E402
from tasks.score import marketplace_rules  # noqa: E402

# The checks meant to catch each defect class: "named right" means one of them failed.
TARGETS: dict[str, tuple[str, ...]] = {
    "filled_hole": ("cut.background_inside",),
    "lost_part": ("cut.lost_part", "cut.split"),
    "fragment": ("cut.fragments", "cut.background_attached"),
    "halo": ("edge.halo",),
    "fringe": ("edge.fringe", "edge.halo"),
    "colour_shift": ("colour.delta_e_of_means", "colour.delta_e_mean"),
    "colour_patch": ("colour.delta_e_share_above", "colour.delta_e_p95"),
    "blur": ("sharpness.vs_source", "edge.transition_width"),
    "jpeg": ("artefacts.jpeg", "artefacts.jpeg_quality"),
    "clipped": ("exposure.clipped_highlights",),
    "shadow_direction": ("shadow.direction",),
    "floating": ("shadow.contact",),
    "touches_edge": ("framing.cut_off", "market.border_purity"),
    "source_small": ("source.resolution",),
    "source_cut_off": ("source.cut_off",),
    "model_cut": (
        "cut.background_inside",
        "cut.background_attached",
        "cut.fragments",
        "cut.lost_part",
        "cut.split",
        "cut.wrong_object",
        "cut.enclosed",
        # "uncertain cut": the segmenter says its own map is unsure of the product's outline
        # (production's check, tasks/score.py), a reason about the cut itself
        "segment.confidence",
    ),
}
PROFILE = "amazon-main"
FRAGMENT_VISIBLE = qc_corpus.DEFECTS["fragment"][1]  # share of the canvas: a visible fragment
# production's rules for the profile (tasks/score.marketplace_rules), the frame-edge and
# residue rules included: what a clean render must pass in a real run
RULES = marketplace_rules(BUILTIN_PROFILES[PROFILE])


def evidence(case, render) -> QcEvidence:
    """What production's gate sees (bench/qc_gate.gate_evidence), the cut being the case's."""
    return gate_evidence(case.product.source_rgb, case.source_mask, render)


def grade(case) -> dict:
    """One case through the gate: its labels, status, failing checks and every figure."""
    th = QcThresholds()
    ev = {PROFILE: evidence(case, case.renders[PROFILE])}
    report = score_sku(ev, th, {PROFILE: RULES})[PROFILE]
    status, failing, reasons, metrics = report.status, list(report.failing), list(report.reasons), dict(report.metrics)
    if "confidence" in case.detail:  # a model's cut: production adds the segmenter's certainty (tasks/score.py)
        certainty = confidence_check(case.detail["confidence"], th)
        metrics[certainty.name] = certainty.value
        if certainty.status == "fail":
            status, failing, reasons = "fail", failing + [certainty.name], reasons + [certainty.reason]
    nominal = case.detail.get("nominal", case.severity)
    return {
        "product": case.product.name,
        "defect": case.defect,
        "severity": float(case.severity),
        "grade": str(nominal) if isinstance(nominal, (tuple, list, str)) else round(float(nominal), 4),
        "visible": bool(case.visible),
        "status": status,
        "failing": failing,
        "reasons": reasons,
        "metrics": metrics,
    }


def _product_cases(args) -> list[dict]:
    """One product: its clean case and ``per_product`` defect classes at every grade,
    made lazily (a case's canvases are dropped once graded)."""
    index, seed, per_product, model_dir, only = args
    product = qc_corpus._product(seed, index)
    classes = sorted(only or qc_corpus.DEFECTS)
    random.Random(seed * 1000 + index).shuffle(classes)
    rows = []
    for case in qc_corpus.cases(product, seed=seed, defects=classes[:per_product]):
        rows.append(_label(grade(case), case))
        if model_dir and case.defect == "clean":
            rows += [_label(grade(c), c) for c in _model_cut_cases(product, case, model_dir)]
    return rows


def _label(row: dict, case) -> dict:
    """A 'clean' render of a source that needs more enlargement than the visible level of
    ``source_small`` is that defect, not a clean case (the corpus's small products)."""
    visible = qc_corpus.DEFECTS["source_small"][1]
    if row["defect"] == "clean" and case.enlargement >= visible:
        row.update(defect="source_small", severity=round(case.enlargement, 1), grade="clean, small", visible=True)
    return row


def _model_cut_cases(product, clean, model_dir):
    """The segmenter's own cut of the generated photo (u2netp + refinement, as
    tasks/segment.py), rendered like production: clean when it matches the true outline
    (IoU >= 0.98) and gets nothing visibly wrong (``cut_faults``), otherwise a defect the
    cut checks should name."""
    from bench._corpus_defects import Scene
    from imaging.refine import refine_mask
    from imaging.segment import load_segmenter, mask_confidence
    from tasks.segment import PREVIEW_PX

    raw = load_segmenter("u2netp", model_dir, "cpu").predict(product.source_rgb)
    mask = np.round(refine_mask(product.source_rgb, raw) * 255.0) / 255.0  # the 8-bit mask PNG
    # production reads the segmenter's certainty off its map of the preview (tasks/segment.py)
    preview = min(1.0, PREVIEW_PX / max(raw.shape))
    confidence = mask_confidence(raw if preview == 1.0 else cv2.resize(raw, None, fx=preview, fy=preview))
    mask = mask.astype(np.float32)
    truth, cut = product.true_mask >= 0.5, mask >= 0.5
    if not cut.any():
        return []  # production fails such a SKU before QC ("no product found")
    iou = float((truth & cut).sum() / max(1, (truth | cut).sum()))
    render = Scene(product.source_rgb, mask, PROFILE, product.attrs["template"]).render_self()
    canvas_px = render.rgb.shape[0] * render.rgb.shape[1]
    faults = cut_faults(truth, cut, fragment_px=FRAGMENT_VISIBLE * canvas_px / float(render.placement.scale) ** 2)
    bad = iou < 0.98 or bool(faults)
    return [
        qc_corpus.Case(
            product,
            "model_cut" if bad else "clean",
            round(1.0 - iou, 4),
            bad,
            mask,
            {PROFILE: render},
            float(render.placement.scale),
            {"nominal": "model cut", "iou": iou, "faults": faults, "confidence": confidence},
        )
    ]


def cut_faults(
    truth: np.ndarray, cut: np.ndarray, tolerance_px: int = 2, fragment_px: float | None = None
) -> list[str]:
    """What a cut gets visibly wrong against the true outline, at the issue's floors: a part
    lost (>= 0.5 % of the product), backdrop added (a filled hole >= 1 % of the product; a
    piece stuck on or apart >= ``fragment_px`` source pixels, the area that covers 0.2 % of the
    canvas, when given: the issue's visible fragment), the product cut in two. Pixels within
    ``tolerance_px`` of the other outline do not count (a cut a pixel inside or outside the
    true outline is a clean cut, not a lost ring); a cut can match the outline to IoU 0.98
    and still lose a lamp's stem or fill a ring.

    >>> t = np.zeros((100, 100), bool); t[20:80, 20:80] = True; t[5:20, 48:52] = True  # a box, a stem
    >>> shifted, stemless = np.pad(t[1:], ((0, 1), (0, 0))), t & (np.arange(100) >= 20)[:, None]
    >>> cut_faults(t, t), cut_faults(t, shifted), cut_faults(t, stemless)
    ([], [], ['lost part'])
    """
    area = max(1, int(truth.sum()))
    near = 2 * tolerance_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (near, near))
    lost = truth & ~(cv2.dilate(cut.astype(np.uint8), kernel) > 0)
    added = cut & ~(cv2.dilate(truth.astype(np.uint8), kernel) > 0)
    faults = []
    for name, region, floor in (("lost part", lost, 0.005), ("backdrop added", added, 0.01)):
        if _piece_areas(region).max(initial=0) >= floor * area:
            faults.append(name)
    if fragment_px is not None and "backdrop added" not in faults:
        # backdrop the cut took from outside the product (stuck on or apart; not a filled hole)
        if _piece_areas(added & ~enclosed_holes(truth)).max(initial=0) >= fragment_px:
            faults.append("backdrop added")

    def pieces(m: np.ndarray) -> int:
        return int((_piece_areas(m) >= 0.005 * area).sum())

    if pieces(cut & truth) > pieces(truth):
        faults.append("cut in two")
    return faults


def _piece_areas(region: np.ndarray) -> np.ndarray:
    """Pixel count of each 8-connected piece of ``region``."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA]


_FIELD_OF = {
    "cut.background_inside": "cut_background_inside",
    "cut.background_attached": "cut_background_attached",
    "cut.fragments": "cut_fragments",
    "cut.lost_part": "cut_lost_part",
    "cut.split": "cut_split",
    "cut.wrong_object": "cut_surround_backdrop",
    "cut.enclosed": "cut_enclosed",
    "source.cut_off": "source_cut_off",
    "source.resolution": "source_enlargement",
    "framing.cut_off": "framing_cut_off",
    "artefacts.jpeg": "jpeg_tiles",
    "artefacts.jpeg_quality": "jpeg_quality_floor",
    "edge.halo": "halo_share",
    "edge.fringe": "fringe_share",
    "edge.transition_width": "edge_transition_px",
    "edge.roughness": "edge_roughness_px",
    "colour.delta_e_mean": "delta_e_mean",
    "colour.delta_e_p95": "delta_e_p95",
    "colour.delta_e_share_above": "delta_e_share_above",
    "colour.delta_e_of_means": "delta_e_of_means",
    "placement.iou": "placement_iou",
    "sharpness.vs_source": "sharpness_ratio",
    "shadow.direction": "shadow_direction_error_deg",
    "shadow.contact": "contact_darkening",
    "exposure.clipped_highlights": "clipped_highlights",
    "exposure.clipped_shadows": "clipped_shadows",
    "market.border_purity": "border_impure_share",
    "market.background_purity": "background_impure_share",
    "market.fill": "fill_deviation",
}


def _rate(hits: int, n: int) -> str:
    return f"{hits / n:6.1%} ({hits}/{n})" if n else "     -     "


def report(rows: list[dict], check_frr: float) -> dict:
    th = QcThresholds().for_profile(PROFILE)
    # Clean: rendered from the true mask. u2netp's own cuts that match the true outline
    # (IoU >= 0.98, no cut_faults) are clean too by outline, but IoU does not see a haloed or soft edge,
    # so they are reported on their own line and left out of the per-check ROC points.
    clean = [r for r in rows if r["defect"] == "clean" and r["grade"] != "model cut"]
    good_cuts = [r for r in rows if r["defect"] == "clean" and r["grade"] == "model cut"]
    out: dict = {"n_cases": len(rows), "n_clean": len(clean)}
    rejected = [r for r in clean if r["status"] == "fail"]
    print(f"\n== whole gate ({PROFILE}, thresholds {th.version}) ==")
    print(f"clean renders rejected: {_rate(len(rejected), len(clean))}   target <= 2 %")
    if good_cuts:
        bad = [r for r in good_cuts if r["status"] == "fail"]
        why = sorted({f for r in bad for f in r["failing"]})
        print(
            f"u2netp cuts that match the outline (IoU >= 0.98, no part lost or added) rejected: "
            f"{_rate(len(bad), len(good_cuts))}" + (f"  ({', '.join(why)})" if why else "")
        )
        out["good_cut_reject_rate"] = len(bad) / len(good_cuts)
    why = defaultdict(int)
    for r in rejected:
        for f in r["failing"]:
            why[f] += 1
    if why:
        print("  by check: " + ", ".join(f"{k} {v}" for k, v in sorted(why.items(), key=lambda kv: -kv[1])))
    out["clean_reject_rate"] = len(rejected) / max(1, len(clean))
    print(f"\n{'defect':<17}{'grade':>12}  {'vis':>3}  {'caught':>16}  {'named right':>16}")
    out["classes"] = {}
    for defect in sorted({r["defect"] for r in rows} - {"clean"}):
        mine = [r for r in rows if r["defect"] == defect]
        for sev in sorted({r["grade"] for r in mine}, key=str):
            cell = [r for r in mine if r["grade"] == sev]
            caught = sum(r["status"] == "fail" for r in cell)
            named = sum(any(f in TARGETS[defect] for f in r["failing"]) for r in cell)
            vis = "yes" if all(r["visible"] for r in cell) else "no" if not any(r["visible"] for r in cell) else "mix"
            print(
                f"{defect:<17}{str(sev):>12}  {vis:>3}  {_rate(caught, len(cell)):>16}  {_rate(named, len(cell)):>16}"
            )
        visible = [r for r in mine if r["visible"]]
        caught = sum(r["status"] == "fail" for r in visible)
        named = sum(any(f in TARGETS[defect] for f in r["failing"]) for r in visible)
        print(
            f"{defect:<17}{'visible':>12}  {'':>3}  {_rate(caught, len(visible)):>16}  {_rate(named, len(visible)):>16}"
            "   target >= 95 %"
        )
        out["classes"][defect] = {
            "visible_caught": caught / max(1, len(visible)),
            "visible_named": named / max(1, len(visible)),
            "n_visible": len(visible),
        }

    print("\n== per check: clean figures vs the visible defects it is meant to catch ==")
    print(
        "   ROC points: the fail level at the clean renders' upper quantiles and in force; "
        "'between' is the geometric mean of the clean max and the defects' 5th percentile"
    )
    out["checks"] = {}
    for check, field in _FIELD_OF.items():
        limit = getattr(th, field)
        hi = limit.worse == "higher"
        values = [v for r in clean if (v := r["metrics"].get(check)) is not None]
        targets = [d for d, checks in TARGETS.items() if check in checks]
        pos = [
            v for r in rows if r["defect"] in targets and r["visible"] and (v := r["metrics"].get(check)) is not None
        ]
        if not values:
            continue

        def fails(v, t):
            return v > t if hi else v < t

        def point(t):
            frr = sum(fails(v, t) for v in values) / len(values)
            tpr = sum(fails(v, t) for v in pos) / len(pos) if pos else None
            return frr, tpr

        sign = ">" if hi else "<"
        worst = max(values) if hi else min(values)
        print(f"{check}  (n clean {len(values)}, n visible defects {len(pos)}: {','.join(targets) or '-'})")
        print(
            f"    clean   p50 {np.median(values):<9.4g} p95 {np.quantile(values, 0.95 if hi else 0.05):<9.4g} "
            f"worst {worst:<9.4g}"
        )
        cands = [float(np.quantile(values, q)) for q in ((0.95, 0.99, 1.0) if hi else (0.05, 0.01, 0.0))]
        between = None
        if pos:
            p5 = float(np.quantile(pos, 0.05 if hi else 0.95))
            print(f"    defects p5  {p5:<9.4g} p50 {np.median(pos):<9.4g}")
            if (p5 > worst) if hi else (p5 < worst):
                between = float(np.sign(worst) * np.sqrt(abs(worst * p5))) if worst * p5 > 0 else (worst + p5) / 2
                cands.append(between)
        for t in sorted(set(cands) | {limit.fail}, reverse=not hi):
            frr, tpr = point(t)
            tags = [tag for tag, ok in (("in force", t == limit.fail), ("between", t == between)) if ok]
            caught = f"{tpr:6.1%}" if tpr is not None else "    - "
            print(f"    fail {sign} {t:<10.4g} clean rejected {frr:6.1%}  caught {caught}  {', '.join(tags)}")
        frr, tpr = point(limit.fail)
        out["checks"][check] = {
            "fail": limit.fail,
            "clean_reject": frr,
            "caught": tpr,
            "between": between,
            "clean_worst": worst,
            "n_clean": len(values),
            "n_defect": len(pos),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=90)
    ap.add_argument(
        "--per-product", type=int, default=1, help="defect classes per product, every grade (plus its clean case)"
    )
    ap.add_argument(
        "--defects",
        default=None,
        help="comma-separated classes drawn on EVERY product (all grades) instead of --per-product rotating "
        "ones: a class's rate on many products, e.g. --defects fringe --products 24",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--check-frr", type=float, default=0.005, help="per-check clean-reject budget for suggestions")
    ap.add_argument("--model-dir", default=None, help="also grade u2netp's own cuts of the photos")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    started = time.perf_counter()
    only = args.defects.split(",") if args.defects else None
    if only and not set(only) <= set(qc_corpus.DEFECTS):
        ap.error(f"--defects: unknown {sorted(set(only) - set(qc_corpus.DEFECTS))}; known {sorted(qc_corpus.DEFECTS)}")
    per_product = len(only) if only else args.per_product
    jobs = [(i, args.seed, per_product, args.model_dir, only) for i in range(args.products)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for batch in pool.map(_product_cases, jobs) for r in batch]
    elapsed = time.perf_counter() - started
    print(
        f"corpus: {args.products} products, {len(rows)} cases, graded in {elapsed:.0f} s "
        f"with {args.workers} workers ({elapsed * args.workers / len(rows):.2f} s per case)"
    )
    summary = report(rows, args.check_frr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
