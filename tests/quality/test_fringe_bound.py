"""The fringe check on black on dark: the clean cut reads none, a visible fringe is named.

Corpus seed 7's black glossy shoe on a dark seamless backdrop, cut with its true outline,
once failed "old backdrop colour on the edge" on 5 flagged profiles of 11 (2.4.4 judged the
share at its lower confidence bound for that; the bound is checked by
quality/checks.share_lower_bound's doctest). Since 2.5.7 the old backdrop, lying between the
black product and the studio white, is read from the canvas's alpha all round the outline:
the clean cut is measured on thousands of profiles and flags almost none. The same shoe with
a visible fringe bled in, and a lamp whose fringe shows all round, fail for it."""

import pytest

from bench import qc_calibration, qc_corpus


def _case(seed: int, index: int, defect: str, severity: float | None = None):
    product = qc_corpus._product(seed, index)
    for case in qc_corpus.cases(product, seed=seed, defects=[] if defect == "clean" else [defect]):
        if case.defect == defect and (severity is None or case.severity == severity):
            return case
    raise AssertionError(f"no {defect} case {severity} for {product.name}")


def test_a_clean_black_shoe_on_dark_reads_no_fringe_all_round():
    row = qc_calibration.grade(_case(7, 18, "clean"))
    m = row["metrics"]
    assert m["edge.fringe_measured"] > 1000  # 2.4.4-2.5.6: 11 profiles, the rest not measurable
    assert m["edge.fringe_share"] < 0.05
    assert "edge.fringe" not in row["failing"], row["reasons"]


@pytest.mark.parametrize("seed,index,severity", [(7, 18, 0.7), (7, 6, 0.45)])
def test_a_visible_fringe_is_still_named(seed, index, severity):
    row = qc_calibration.grade(_case(seed, index, "fringe", severity))
    assert "edge.fringe" in row["failing"]
    assert "old backdrop colour on the edge" in row["reasons"]
