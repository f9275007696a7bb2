"""Batch and SKU lifecycles as explicit state machines. An illegal transition raises.

Batch::

    created -> validating -> processing -> qc -> review_hold -> exporting -> done
    review_hold -> processing            (re-render rounds after review)
    any non-terminal -> failed           (the batch could not run, or more of its SKUs
                                          failed than the run allows: run_verdict)

SKU (terminal: exported, rejected, failed)::

    pending -> validated -> rendering -> rendered -> qc_passed -> approved -> exported
                                                  -> qc_failed -> rendering (automatic retry)
                                                               -> held | rejected
    qc_passed -> held                     (review policy holds it)
    held -> approved | rejected | rendering (reviewer asks for another render)
    any non-terminal -> failed            (with a reason)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


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


# --- what a finished batch run reports to its orchestrator -------------------------------

COMPLETED_WITH_REJECTIONS = "Completed with rejections"
HELD_FOR_REVIEW = "Held for review"


class BatchFailed(Exception):
    """A batch run that ended Failed by its SKUs (more failed than the run allows), with
    its report: what a direct call of the flow raises, and the data of its Failed state
    (``state.result(raise_on_failure=False).report``)."""

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message, report)  # both in args: it pickles with the state's result
        self.report = report

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RunVerdict:
    """The final state a batch run should end in: ``kind`` is ``completed`` or ``failed``
    (the orchestrator's state type), ``name`` the state's name, ``message`` the counts."""

    kind: Literal["completed", "failed"]
    name: str
    message: str


def run_verdict(counts: dict[str, int], max_failed_share: float) -> RunVerdict:
    """What a batch's final state says, from its SKUs' final states.

    ``counts``: SKUs per state (``exported``, ``rejected``, ``failed``, ``held``, ...).
    Failed when the failed SKUs are more than ``max_failed_share`` of all (0..1; 0 fails on
    the first failure, 1 never fails on SKU failures); ``Held for review`` (first) when SKUs
    still wait for a person; ``Completed with rejections`` when some SKUs were rejected or failed;
    ``Completed`` when every SKU was exported.

    >>> run_verdict({"exported": 8, "rejected": 1, "failed": 1}, 0.2).name
    'Completed with rejections'
    >>> run_verdict({"exported": 7, "failed": 3}, 0.2).kind
    'failed'
    """
    if not 0.0 <= max_failed_share <= 1.0:
        raise ValueError(f"max_failed_share must be between 0 and 1, got {max_failed_share}")
    total = sum(counts.values())
    failed, rejected, held = counts.get("failed", 0), counts.get("rejected", 0), counts.get("held", 0)
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    summary = f"{total} SKUs: " + (", ".join(parts) if parts else "none")
    if held:  # not over yet: the run that continues the review (batch_id) judges the batch
        return RunVerdict("completed", HELD_FOR_REVIEW, f"{summary}; {held} wait for review")
    if total and failed / total > max_failed_share:
        share = f"{100 * failed / total:.0f} % failed, more than the {100 * max_failed_share:.0f} % allowed"
        return RunVerdict("failed", "Failed", f"{summary} ({share})")
    if failed or rejected:
        return RunVerdict("completed", COMPLETED_WITH_REJECTIONS, summary)
    return RunVerdict("completed", "Completed", summary)
