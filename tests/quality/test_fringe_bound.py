"""The fringe check judges its share at the lower confidence bound (thresholds 2.4.4).

On black on dark (or white on light) the old backdrop can be told apart from the product
and the new backdrop on a handful of edge profiles only; the share read off them is noise.
Corpus seed 7's black glossy shoe on a dark seamless backdrop, cut with its true outline,
failed "old backdrop colour on the edge" on 5 flagged profiles of 11. The same shoe with a
visible fringe bled in, and a lamp whose fringe shows all round, still fail for it."""

import pytest

from bench import qc_calibration, qc_corpus


def _case(seed: int, index: int, defect: str, severity: float | None = None):
    product = qc_corpus._product(seed, index)
    for case in qc_corpus.cases(product, seed=seed, defects=[] if defect == "clean" else [defect]):
        if case.defect == defect and (severity is None or case.severity == severity):
            return case
    raise AssertionError(f"no {defect} case {severity} for {product.name}")


def test_a_fringe_share_read_off_a_handful_of_profiles_does_not_reject_a_clean_cut():
    row = qc_calibration.grade(_case(7, 18, "clean"))
    m = row["metrics"]
    assert m["edge.fringe_measured"] < 20  # the shoe's outline is measurable in a few places only
    # 2.4.4 judged the 5 of 11 at their lower bound; since 2.5.1 (the backdrop read beside each
    # place, a flagged profile needing weight 0.35) none of the 11 flags: the bound itself is
    # checked by quality/checks.share_lower_bound's doctest
    assert m["edge.fringe"] <= m["edge.fringe_share"] < 0.4
    assert "edge.fringe" not in row["failing"], row["reasons"]


@pytest.mark.parametrize("seed,index,severity", [(7, 18, 0.7), (7, 6, 0.45)])
def test_a_visible_fringe_is_still_named(seed, index, severity):
    row = qc_calibration.grade(_case(seed, index, "fringe", severity))
    assert "edge.fringe" in row["failing"]
    assert "old backdrop colour on the edge" in row["reasons"]
