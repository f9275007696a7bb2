"""Batch and SKU lifecycles as explicit state machines. An illegal transition raises.

Batch::

    created -> validating -> processing -> qc -> review_hold -> exporting -> done
    review_hold -> processing            (re-render rounds after review)
    any non-terminal -> failed           (the batch itself could not run)

SKU (terminal: exported, rejected, failed)::

    pending -> validated -> rendering -> rendered -> qc_passed -> approved -> exported
                                                  -> qc_failed -> rendering (automatic retry)
                                                               -> held | rejected
    qc_passed -> held                     (review policy holds it)
    held -> approved | rejected | rendering (reviewer asks for another render)
    any non-terminal -> failed            (with a reason)
"""

from __future__ import annotations

from enum import StrEnum


class BatchState(StrEnum):
    created = "created"
    validating = "validating"
    processing = "processing"
    qc = "qc"
    review_hold = "review_hold"
    exporting = "exporting"
    done = "done"
    failed = "failed"


class SkuState(StrEnum):
    pending = "pending"
    validated = "validated"
    rendering = "rendering"
    rendered = "rendered"
    qc_passed = "qc_passed"
    qc_failed = "qc_failed"
    held = "held"
    approved = "approved"
    exported = "exported"
    rejected = "rejected"
    failed = "failed"


class IllegalTransition(ValueError):
    """A state change the lifecycle does not allow."""


B, S = BatchState, SkuState

BATCH_TRANSITIONS: dict[BatchState, frozenset[BatchState]] = {
    B.created: frozenset({B.validating}),
    B.validating: frozenset({B.processing}),
    B.processing: frozenset({B.qc}),
    B.qc: frozenset({B.review_hold, B.processing}),
    B.review_hold: frozenset({B.exporting, B.processing}),
    B.exporting: frozenset({B.done}),
    B.done: frozenset(),
    B.failed: frozenset(),
}
for _state in (B.created, B.validating, B.processing, B.qc, B.review_hold, B.exporting):
    BATCH_TRANSITIONS[_state] = BATCH_TRANSITIONS[_state] | {B.failed}

SKU_TRANSITIONS: dict[SkuState, frozenset[SkuState]] = {
    S.pending: frozenset({S.validated}),
    S.validated: frozenset({S.rendering}),
    S.rendering: frozenset({S.rendered}),
    S.rendered: frozenset({S.qc_passed, S.qc_failed}),
    S.qc_passed: frozenset({S.approved, S.held}),
    S.qc_failed: frozenset({S.rendering, S.held, S.rejected}),
    S.held: frozenset({S.approved, S.rejected, S.rendering}),
    S.approved: frozenset({S.exported}),
    S.exported: frozenset(),
    S.rejected: frozenset(),
    S.failed: frozenset(),
}
SKU_TERMINAL = frozenset({S.exported, S.rejected, S.failed})
for _state in SKU_TRANSITIONS:
    if _state not in SKU_TERMINAL:
        SKU_TRANSITIONS[_state] = SKU_TRANSITIONS[_state] | {S.failed}


def check_batch_transition(current: str, new: str) -> BatchState:
    cur, nxt = BatchState(current), BatchState(new)
    if nxt not in BATCH_TRANSITIONS[cur]:
        raise IllegalTransition(f"batch cannot go from {cur.value!r} to {nxt.value!r}")
    return nxt


def check_sku_transition(current: str, new: str, *, sku: str = "?") -> SkuState:
    cur, nxt = SkuState(current), SkuState(new)
    if nxt not in SKU_TRANSITIONS[cur]:
        raise IllegalTransition(f"SKU {sku!r} cannot go from {cur.value!r} to {nxt.value!r}")
    return nxt
