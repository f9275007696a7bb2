"""What the quality gate costs next to the render it judges, per studio SKU, side by side.

For generated products of the calibration corpus (bench/qc_corpus.py: real textures,
sizes from small to large), one run times, per SKU and the three default profiles
(amazon-main, shopify, transparent):

* render: what production does per profile after segmentation (crop, classical
  resampling, studio composite, encoding: ``imaging`` calls as in tasks/render.py);
* gate: reading the encoded files back (the rules read what ships) and ``score_sku``,
  which measures the profile-invariant checks (the cut, colour, edges, clipping) once
  and the rest per profile.

It prints the medians and the gate's share of the render time, then where the gate's
time goes. Segmentation is not in "render": ``--with-segmentation MODEL_DIR`` adds
u2netp's time to it (what a SKU costs end to end on CPU).

    python bench/qc_gate.py [--products 12] [--with-segmentation .lightbox/models]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import qc_corpus  # noqa: E402
from bench._corpus_defects import Scene  # noqa: E402
from bench.qc_calibration import evidence  # noqa: E402
from quality import checks  # noqa: E402
from quality.gate import score_sku  # noqa: E402
from quality.thresholds import MARKETPLACE_PROFILES, MarketplaceRules, QcThresholds  # noqa: E402

PROFILES = ("amazon-main", "shopify", "transparent")
RULES = {
    "amazon-main": MARKETPLACE_PROFILES["amazon-main"],
    "shopify": MARKETPLACE_PROFILES["shopify"],
    "transparent": MarketplaceRules(name="transparent", max_longest_side=2048),
}


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _parts(ev, th) -> dict[str, float]:
    """Seconds of each check family on one render (the shared ones run once per SKU)."""
    families = {
        "cut (once)": lambda: checks.cut_checks(ev, th),
        "colour (once)": lambda: checks.colour_checks(ev, th),
        "edges (once)": lambda: checks.edge_checks(ev, th),
        "clipping (once)": lambda: checks.exposure_checks(ev, th),
        "shadow (per profile)": lambda: checks.shadow_checks(ev, th),
        "framing + jpeg (per profile)": lambda: checks.framing_checks(ev, th),
        "marketplace (per profile)": lambda: checks.marketplace_checks(ev, th, RULES["amazon-main"]),
    }
    return {name: _timed(fn)[1] for name, fn in families.items()}


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
    renders, gates, parts = [], [], []
    for index in range(args.products):
        product = qc_corpus._product(args.seed, index)
        seg = _timed(lambda: segmenter.predict(product.source_rgb))[1] if segmenter else 0.0
        made, seconds = _timed(
            lambda: {
                p: Scene(product.source_rgb, product.true_mask, p, product.attrs["template"]).render_self()
                for p in PROFILES
            }
        )
        case = qc_corpus.Case(product, "clean", 0.0, False, product.true_mask, made, 0.0)
        _, gate_s = _timed(lambda: score_sku({p: evidence(case, made[p]) for p in PROFILES}, th, RULES))
        renders.append(seconds + seg)
        gates.append(gate_s)
        parts.append(_parts(evidence(case, made["amazon-main"]), th))
        print(f"{product.name:<14} {product.attrs['size']:<7} render {seconds + seg:6.2f} s  gate {gate_s:5.2f} s")
    r, g = statistics.median(renders), statistics.median(gates)
    what = "segmentation + render" if segmenter else "render (after segmentation)"
    print(
        f"\nper SKU, 3 profiles, median of {len(renders)}: {what} {r:.2f} s, gate {g:.2f} s "
        f"-> the gate adds {g / r:.0%}  (target <= 10 %)"
    )
    print("where the gate's time goes (one render, median):")
    for name in parts[0]:
        print(f"  {name:<30} {statistics.median(p[name] for p in parts) * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
