"""Review decisions. The ``auto`` policy approves what passed QC and rejects what still
failed after the automatic retries, naming the checks; the human hold is its own flow step."""
from __future__ import annotations

from prefect import task

from tasks.bookkeeping import record_reviews
from tasks.results import SkuOutcome

AUTO_REVIEWER = "policy:auto"


@task(name="auto_review")
def auto_review(database_url: str, outcomes: list[SkuOutcome]) -> list[SkuOutcome]:
    """Record a decision for every rendered SKU; return the approved ones."""
    decisions, approved = [], []
    for outcome in outcomes:
        if outcome.status == "passed":
            approved.append(outcome)
            decisions.append(dict(sku_id=outcome.sku_id, decision="approve", reviewer=AUTO_REVIEWER,
                                  state="approved", round=0))
        elif outcome.status == "qc_failed":
            decisions.append(dict(sku_id=outcome.sku_id, decision="reject", reviewer=AUTO_REVIEWER,
                                  state="rejected", round=0, reason=outcome.reason,
                                  note=f"failed QC after {outcome.attempts} attempts"))
    record_reviews.fn(database_url, decisions)
    return approved
