"""tasks/adjust.py (next_params) and tasks/results.py (best_attempt): the retry loop's policy."""

import pytest

from tasks.adjust import next_params
from tasks.records import DEFAULT_SHADOW, QcInfo, RenderParams
from tasks.results import SkuOutcome, best_attempt

START = RenderParams()  # attempt 1, the template's values


def test_filled_hole_reopens_and_refines():
    nxt = next_params(START, ["amazon-main:cut.background_inside"])
    assert nxt.fill_holes is False and nxt.refine_strength == START.refine_strength + 1
    assert nxt.attempt == 2 and nxt.seed == 1
    assert (nxt.cut_bias, nxt.decontaminate) == (START.cut_bias, START.decontaminate)


def test_lost_part_keeps_more_of_the_cut():
    nxt = next_params(START, ["shopify:cut.lost_part"])
    assert nxt.cut_bias == -1 and nxt.refine_strength == START.refine_strength
    assert next_params(START, ["cut.fragments"]).cut_bias == 1


def test_unfixable_failure_is_not_retried():
    assert next_params(START, ["generic:source.resolution"]) is None
    assert next_params(START, ["generic:edge.halo", "generic:source.resolution"]) is None
    assert next_params(START, ["generic:cut.lost_part", "generic:cut.fragments"]) is None  # conflicting cut


def test_halo_decontaminates():
    nxt = next_params(START, ["amazon-main:edge.halo"])
    assert nxt.decontaminate is True and nxt.refine_strength == START.refine_strength + 1


def test_same_failure_with_the_plan_in_force_stops():
    once = next_params(START, ["a:cut.lost_part"])
    assert once is not None
    assert next_params(once, ["a:cut.lost_part"]) is None  # cut_bias is already -1
    strong = RenderParams(refine_strength=3, decontaminate=True, attempt=2)
    assert next_params(strong, ["a:edge.halo"]) is None  # refine is capped, decontamination on
    opened = RenderParams(refine_strength=3, fill_holes=False)
    assert next_params(opened, ["a:cut.background_inside"]) is None
    assert next_params(START, []) is None  # nothing to change


def test_refine_strength_is_capped():
    p = START
    for _ in range(5):
        p = next_params(p, ["a:edge.roughness"]) or p
    assert p.refine_strength == 3


def test_shadow_strength_follows_the_shadow_defect():
    stronger = next_params(START, ["a:shadow.contact"])
    weaker = next_params(START, ["a:shadow.direction"])
    assert stronger.shadow_strength > DEFAULT_SHADOW > weaker.shadow_strength
    again = next_params(stronger, ["a:shadow.contact"])
    assert again.shadow_strength > stronger.shadow_strength
    assert next_params(RenderParams(shadow_strength=0.5), ["a:shadow.direction"]).shadow_strength < 0.5


def test_fill_follows_framing_and_target():
    assert next_params(START, ["a:framing.cut_off"]).fill < 0.85
    assert next_params(RenderParams(fill=0.6), ["a:market.fill"]).fill == pytest.approx(0.85)


# --- best_attempt -------------------------------------------------------------------------


def _qc(*fails, warns=0, value=0.01):
    limit = {"warn": 0.004, "fail": 0.006, "worse": "higher"}
    checks = [{"name": n, "status": "fail", "value": value, "threshold": limit, "reason": "x"} for n in fails]
    checks += [{"name": "edge.halo", "status": "warn", "value": 0.1, "threshold": limit}] * warns
    return QcInfo(
        profile="generic",
        status="fail" if fails else "pass",
        metrics={},
        checks=checks,
        failing=list(fails),
        thresholds_version="2.0.0",
        encoded_path="x.jpg",
    )


def _outcome(status, *qcs, attempts=1, timings=None):
    failing = [f"generic:{n}" for q in qcs for n in q.failing]
    return SkuOutcome(
        sku_id=7,
        status=status,
        attempts=attempts,
        qcs=list(qcs),
        failing=failing,
        timings=timings or {"render": float(attempts)},
        reason="qc: ..." if failing else None,
    )


def test_worse_later_attempt_is_not_kept():
    first = _outcome("qc_failed", _qc("cut.lost_part"), attempts=1)
    second = _outcome("qc_failed", _qc("cut.lost_part", "edge.halo"), attempts=2, timings={"render": 3.5})
    kept = best_attempt(first, second)
    assert kept.failing == first.failing and kept.qcs == first.qcs
    assert kept.attempts == 2 and kept.timings == {"render": 3.5}  # the later count and summed timings


def test_better_later_attempt_is_kept():
    first = _outcome("qc_failed", _qc("cut.lost_part", "edge.halo"), attempts=1)
    second = _outcome("qc_failed", _qc("cut.lost_part"), attempts=2)
    assert best_attempt(first, second) is second
    milder = _outcome("qc_failed", _qc("cut.lost_part", value=0.007), attempts=3)
    assert best_attempt(second, milder) is milder  # same count, smaller excess over the fail level
    assert best_attempt(milder, second).failing == milder.failing


def test_status_ranks_passed_then_qc_failed_then_failed():
    passed = _outcome("passed", _qc(warns=3), attempts=2)
    qc_failed = _outcome("qc_failed", _qc("edge.halo"), attempts=2)
    failed = SkuOutcome.failed(7, "render crashed")
    assert best_attempt(qc_failed, passed) is passed
    assert best_attempt(passed, qc_failed).status == "passed"
    assert best_attempt(failed, qc_failed) is qc_failed
    assert best_attempt(qc_failed, failed).status == "qc_failed"
    assert best_attempt(None, failed) is failed


def test_ties_go_to_the_later_attempt():
    first = _outcome("qc_failed", _qc("edge.halo"), attempts=1)
    second = _outcome("qc_failed", _qc("edge.halo"), attempts=2)
    assert best_attempt(first, second) is second


def test_adjusted_is_one_language_for_retries_and_reviews():
    from tasks.records import DEFAULT_FILL, RenderParams
    from tasks.review import rerender_params

    base = RenderParams(attempt=2, fill=0.93, shadow_strength=0.8, refine_strength=3, cut_bias=1)
    nudged = base.adjusted(
        {"fill": "+0.05", "shadow_strength": "*1.5", "refine_strength": "+1", "cut_bias": "+1", "seed": "+1"}
    )
    assert nudged.attempt == 3 and nudged.seed == 1
    assert (nudged.fill, nudged.shadow_strength, nudged.refine_strength, nudged.cut_bias) == (0.95, 1.0, 3, 1)
    assert RenderParams().adjusted({"fill": "target"}).fill == DEFAULT_FILL
    assert RenderParams(fill=0.52).adjusted({"fill": "-0.05"}).fill == 0.5

    reviewed = rerender_params(_outcome("passed", attempts=2), ["product larger", "cleaner edges"])
    assert reviewed.attempt == 3 and reviewed.fill == round(DEFAULT_FILL + 0.05, 3)
    assert reviewed.refine_strength == 2 and reviewed.decontaminate
