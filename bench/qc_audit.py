"""Good work under every configuration: clean renders through each studio template and
built-in profile, graded with production's rules, and which checks reject them.

bench/qc_calibration.py measures the gate on one profile (amazon-main) and the corpus's
two templates (white_studio, white_studio_hard). A false reject that only another
template or profile brings out does not show there: 2.4.3's residue fix came from this
audit (every stand and pair of headphones failed amazon-main's residue rule on every
template; the calibration had graded without that rule). For generated products of the
calibration corpus (bench/qc_corpus.py), cut with their true masks, this renders every
studio template x built-in profile as production does (``imaging`` through
bench/_corpus_defects.Scene, the files read back as tasks/score.py reads them) and grades
each SKU with ``score_sku`` and ``tasks.score.marketplace_rules``.

It prints, per template and profile, the share of clean renders rejected, then every
failing check with its figure. ``source.resolution`` is left out: small sources that need
more enlargement than a profile allows are in the corpus on purpose, and failing them is
right.

    python bench/qc_audit.py [--seed 0] [--products 20] [--templates white_studio,...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import qc_corpus  # noqa: E402
from bench._corpus_defects import Scene  # noqa: E402
from bench.qc_gate import evidence  # noqa: E402
from imaging.profiles import BUILTIN_PROFILES  # noqa: E402
from quality.gate import score_sku  # noqa: E402
from quality.thresholds import QcThresholds  # noqa: E402
from tasks.score import marketplace_rules  # noqa: E402

STUDIO = ("white_studio", "white_studio_hard", "white_floating", "colour_studio", "gradient_studio")
EXPECTED = {"source.resolution"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--products", type=int, default=20)
    ap.add_argument("--templates", default=",".join(STUDIO))
    args = ap.parse_args(argv)
    profiles = list(BUILTIN_PROFILES)
    rules = {p: marketplace_rules(BUILTIN_PROFILES[p]) for p in profiles}
    th = QcThresholds()
    templates = args.templates.split(",")
    rejected, total, failures = Counter(), Counter(), []
    for index in range(args.products):
        product = qc_corpus._product(args.seed, index)
        for template in templates:
            made = {p: Scene(product.source_rgb, product.true_mask, p, template).render_self() for p in profiles}
            reports = score_sku({p: evidence(product, made[p]) for p in profiles}, th, rules)
            for p, report in reports.items():
                total[(template, p)] += 1
                wrong = [c for c in report.checks if c.status == "fail" and c.name not in EXPECTED]
                rejected[(template, p)] += bool(wrong)
                failures += [(product.name, template, p, c.name, c.value, c.detail) for c in wrong]
    print(f"clean renders rejected (seed {args.seed}, {args.products} products, thresholds {th.version}):")
    width = max(len(p) for p in profiles)
    print(f"{'template':<18}" + "".join(f"{p:>{width + 2}}" for p in profiles))
    for template in templates:
        cells = "".join(f"{rejected[(template, p)] / total[(template, p)]:>{width + 2}.0%}" for p in profiles)
        print(f"{template:<18}{cells}")
    print(f"\nfailing checks ({len(failures)}):" if failures else "\nno check failed a clean render")
    for name, template, p, check, value, detail in failures:
        print(f"  {name:<14} {template:<18} {p:<16} {check:<28} {value:.4g}  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
