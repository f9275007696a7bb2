"""What the quality gate costs next to the render it judges, per studio SKU, side by side.

For generated products of the calibration corpus (bench/qc_corpus.py: real textures,
sizes from small to large), one run times, per SKU and the three default profiles
(amazon-main, shopify, transparent) with their production rules (``imaging.profiles``
through ``tasks.score.marketplace_rules``: amazon-main's frame-edge and residue rules
included):

* render: what production does per profile after segmentation (crop, classical
  resampling, studio composite, encoding: ``imaging`` calls as in tasks/render.py);
* gate: reading the encoded files back as production does (``tasks.score.decode_shipped``:
  the ICC profile, a JPEG's grey levels; the rules read what ships), building the
  evidence and ``score_sku``, which measures the profile-invariant checks (the cut, colour,
  edges, clipping) once and the rest per profile.

It prints the medians of wall time and of CPU time (this process's, every thread: the
figure other work on the machine does not inflate), the gate's share of the render, then
where the gate's time goes (CPU, each family timed on fresh evidence in the order the
gate runs them, so what families share is counted where it is first measured).
Segmentation is not in "render": ``--with-segmentation MODEL_DIR`` adds u2netp's time to
it (what a SKU costs end to end on CPU).

    python bench/qc_gate.py [--products 12] [--with-segmentation .lightbox/models]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import qc_corpus  # noqa: E402
from bench._corpus_defects import Scene  # noqa: E402
from imaging.profiles import BUILTIN_PROFILES  # noqa: E402
from quality import checks  # noqa: E402
from quality.consistency import image_features  # noqa: E402
from quality.gate import QcEvidence, score_sku  # noqa: E402
from quality.jpeg_quality import jpeg_quality  # noqa: E402
from quality.market_rules import market_rule_checks  # noqa: E402
from quality.marketplace import icc_is_srgb  # noqa: E402
from quality.thresholds import QcThresholds  # noqa: E402
from tasks.score import decode_shipped, marketplace_rules  # noqa: E402

PROFILES = ("amazon-main", "shopify", "transparent")
RULES = {p: marketplace_rules(BUILTIN_PROFILES[p]) for p in PROFILES}


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def evidence(product, render, shipped=None) -> QcEvidence:
    """The gate's view of one render of a product cut with its true mask."""
    return gate_evidence(product.source_rgb, product.true_mask, render, shipped)


def gate_evidence(source_rgb, source_mask, render, shipped=None) -> QcEvidence:
    """The gate's view of one corpus render as tasks/score.evidence builds it in production:
    the encoded file read back with ``decode_shipped`` (``shipped``: its ``(grey, icc)``,
    read from ``render.encoded`` when not given); a render with no file has no file checks.
    bench/qc_calibration.py grades with this too, so its thresholds meet production's inputs."""
    grey = icc = None
    if render.encoded is not None:
        grey, icc = shipped or decode_shipped(render.encoded, jpeg=render.encoded[:2] == b"\xff\xd8")
    return QcEvidence(
        source_rgb=source_rgb,
        source_mask=source_mask,
        output_rgb=render.rgb,
        output_alpha=render.alpha,
        placement=render.placement.matrix(),
        background_rgb=render.background_rgb,
        shadow_style=render.shadow_style,
        light_direction_deg=render.light_direction_deg,
        grounded=render.grounded,
        backdrop=not render.transparent,
        jpeg_quality=jpeg_quality(render.encoded) if render.encoded is not None else None,
        encoded_bytes=len(render.encoded) if render.encoded is not None else None,
        icc_is_srgb=icc_is_srgb(icc) if render.encoded is not None else None,
        shipped_grey=grey,
    )


def _parts(product, made, th) -> dict[str, float]:
    """CPU seconds of each step of the gate on one SKU, on fresh evidence, with OpenCV on
    one thread (its worker threads would count their waiting as work)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return _steps(product, made, th)
    finally:
        cv2.setNumThreads(threads)


def _steps(product, made, th) -> dict[str, float]:
    out: dict[str, float] = {}

    def add(name, fn):
        value, _, cpu = _timed(fn)
        out[name] = out.get(name, 0.0) + cpu
        return value

    jpeg = {p: made[p].encoded[:2] == b"\xff\xd8" for p in PROFILES}
    shipped = {
        p: add("read back (per profile)", lambda p=p: decode_shipped(made[p].encoded, jpeg[p])) for p in PROFILES
    }
    ev = {p: add("evidence (per profile)", lambda p=p: evidence(product, made[p], shipped[p])) for p in PROFILES}
    ref = ev["amazon-main"]
    add("cut (once)", lambda: checks.cut_checks(ref, th))
    add("colour (once)", lambda: checks.colour_checks(ref, th))
    add("edges (once)", lambda: checks.edge_checks(ref, th))
    add("clipping (once)", lambda: checks.exposure_checks(ref, th))
    for p, e in ev.items():
        t = th.for_profile(p)
        add("shadow (per profile)", lambda e=e, t=t: checks.shadow_checks(e, t))
        add("framing + jpeg (per profile)", lambda e=e, t=t: checks.framing_checks(e, t))
        add(
            "marketplace (per profile)",
            lambda e=e, t=t, p=p: (checks.marketplace_checks(e, t, RULES[p]), market_rule_checks(e, t, RULES[p])),
        )
        add(
            "batch features (per profile)",
            lambda e=e, t=t: image_features(
                e.output_rgb,
                e.output_alpha,
                work_side=t.batch_work_side,
                validate=False,
                work=checks.work_grid(e, t.batch_work_side),
                box=checks.product_box(e),
            ),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-segmentation", metavar="MODEL_DIR", default=None)
    args = ap.parse_args(argv)
    th = QcThresholds()
    segmenter = None
    if args.with_segmentation:
        from imaging.segment import load_segmenter

        segmenter = load_segmenter("u2netp", args.with_segmentation, "cpu")
    renders, gates, renders_cpu, gates_cpu, parts = [], [], [], [], []
    for index in range(args.products):
        product = qc_corpus._product(args.seed, index)
        seg = _timed(lambda: segmenter.predict(product.source_rgb))[1:] if segmenter else (0.0, 0.0)
        made, seconds, cpu = _timed(
            lambda: {
                p: Scene(product.source_rgb, product.true_mask, p, product.attrs["template"]).render_self()
                for p in PROFILES
            }
        )
        _, gate_s, gate_cpu = _timed(lambda: score_sku({p: evidence(product, made[p]) for p in PROFILES}, th, RULES))
        renders.append(seconds + seg[0])
        renders_cpu.append(cpu + seg[1])
        gates.append(gate_s)
        gates_cpu.append(gate_cpu)
        parts.append(_parts(product, made, th))
        print(
            f"{product.name:<14} {product.attrs['size']:<7} render {seconds + seg[0]:6.2f} s  gate {gate_s:5.2f} s"
            f"   (CPU: render {cpu + seg[1]:6.2f} s  gate {gate_cpu:5.2f} s)"
        )
    what = "segmentation + render" if segmenter else "render (after segmentation)"
    for label, r, g in (
        ("wall", statistics.median(renders), statistics.median(gates)),
        ("CPU ", statistics.median(renders_cpu), statistics.median(gates_cpu)),
    ):
        print(
            f"\n{label} per SKU, 3 profiles, median of {len(renders)}: {what} {r:.2f} s, gate {g:.2f} s "
            f"-> the gate adds {g / r:.0%}  (target <= 10 %)",
            end="",
        )
    print("\n\nwhere the gate's time goes (CPU per SKU with OpenCV on one thread, median):")
    for name in parts[0]:
        print(f"  {name:<30} {statistics.median(p[name] for p in parts) * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
