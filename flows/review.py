"""The review hold of a batch, between QC and export.

The policy decides first (``tasks.review``); what it holds waits for a person: the flow
publishes the review artifact, then suspends with the review form (``suspend_flow_run``
with a ``RunInput``), which frees the worker until someone answers in the Prefect UI or
through the API. Sent-back SKUs are rendered again with the reviewer's changes, pass QC
again and come back to the hold, for at most ``rounds`` answered holds per run.

A suspension belongs to the batch flow run itself, so this is a plain function called from
its body, not a subflow. When the run resumes, Prefect runs the flow from the top: every
step before the answer is a task with a persisted result (or a finished subflow), so the
replay returns what the first pass recorded and writes nothing twice, and
``suspend_flow_run`` with the same key returns the stored answer.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import deployment
from prefect.utilities.annotations import quote

from catalog.states import BatchState
from tasks.bookkeeping import record_failures, set_batch_state
from tasks.records import RunSettings
from tasks.results import ReviewItem, ShardItem, SkuOutcome
from tasks.review import ReviewPolicy, enter_review, record_review_answer, review_form
from tasks.review_artifact import MAX_URL_EXPIRY_S, publish_review

Render = Callable[[list[ShardItem]], list[SkuOutcome]]


def require_deployment(policy: ReviewPolicy) -> None:
    """A hold suspends the run, and Prefect suspends only runs of a deployment."""
    if policy != "auto" and deployment.get_id() is None:
        raise ValueError(
            f"review_policy {policy!r} holds SKUs for people, which suspends the flow "
            "run: run the batch from a deployment (prefect.yaml), or use 'auto'"
        )


def review_items(items: list[ShardItem], outcomes: list[SkuOutcome]) -> list[ReviewItem]:
    """The rendered SKUs (QC passed or failed) with the job and source they came from."""
    by_id = {item.job.sku_id: item for item in items}
    return [
        ReviewItem(job=by_id[o.sku_id].job, source=by_id[o.sku_id].source, outcome=o)
        for o in outcomes
        if o.status in ("passed", "qc_failed")
    ]


def hold_for_review(
    batch_id: str,
    name: str,
    items: list[ReviewItem],
    settings: RunSettings,
    render: Render,
    *,
    policy: ReviewPolicy,
    rounds: int,
    timeout_s: int | None,
    thumbnail_store: str | None,
) -> int:
    """Review rounds until nothing is held or ``rounds`` holds were answered; returns how
    many SKUs still wait (they stay ``held`` in the database, not exported, for a later run
    of this batch)."""
    logger = get_run_logger()
    db = settings.database_url
    notes: list[str] = []
    hold_no = 1
    while True:
        hold = enter_review(db, batch_id, quote(items), policy if hold_no == 1 else "hold-all", hold_no)
        if not hold.held or hold_no > rounds:
            return len(hold.held)
        description = publish_review(
            batch_id,
            name,
            quote(hold),
            notes,
            rounds - hold_no,
            thumbnail_store,
            timeout_s or MAX_URL_EXPIRY_S,
            settings,
        )
        logger.info(
            "batch %s: %s SKU(s) wait for review (round %s); the run suspends until someone answers the form",
            batch_id,
            len(hold.held),
            hold.round,
        )
        answer = suspend_flow_run(
            wait_for_input=review_form(hold, description), timeout=timeout_s, key=f"review-hold-{hold_no}"
        )
        verdict = record_review_answer(db, quote(hold), answer.model_dump())
        notes = verdict.notes
        for note in notes:
            logger.warning("review round %s: %s", hold.round, note)
        items = _rerender(db, batch_id, verdict.rerender, render, hold_no) if verdict.rerender else []
        hold_no += 1


def _rerender(db: str, batch_id: str, items: list[ShardItem], render: Render, hold_no: int) -> list[ReviewItem]:
    """review_hold -> processing -> qc -> review_hold for the SKUs sent back."""
    set_batch_state(db, batch_id, BatchState.processing, round=hold_no)
    outcomes = render(items)
    record_failures(db, {o.sku_id: o.reason for o in outcomes if o.status == "failed"})
    set_batch_state(db, batch_id, BatchState.qc, round=hold_no)
    set_batch_state(db, batch_id, BatchState.review_hold, round=hold_no)
    return review_items(items, outcomes)
