"""What the next automatic attempt changes, given the checks the last one failed.

The policy lives in quality.defects (``plan_retry``: which defect wants which change, and
which no re-render can fix); this applies its plan to ``RenderParams``. Check names are
quality.gate's (``edge.fringe``) with an optional ``profile:`` prefix.
"""

from __future__ import annotations

from quality.defects import plan_retry
from tasks.records import RenderParams


def next_params(previous: RenderParams, failing: list[str]) -> RenderParams | None:
    """The next attempt's parameters, or None when re-rendering cannot fix what failed
    (the SKU then goes to review with its reasons and costs no further attempt).
    Every attempt also takes a new seed (generated scenes differ; studio ignores it)."""
    plan = plan_retry(failing)
    if plan is None:
        return None
    following = previous.adjusted({**plan, "seed": "+1"})
    if following.model_dump(exclude={"attempt", "seed"}) == previous.model_dump(exclude={"attempt", "seed"}):
        return None  # the plan is already in force: the same render would fail the same way
    return following


def follow_up(params: RenderParams, outcome, max_attempts: int) -> RenderParams | None:
    """The parameters of the attempt after ``outcome`` (rendered with ``params``), or None
    when the SKU is done: it passed or failed, it is out of attempts, or nothing a
    re-render changes can fix what failed. ``flows/render_shard.py`` and the cached
    re-run's shortcut (``tasks/reuse.py``) walk the attempts by this one rule."""
    if outcome.status != "qc_failed" or params.attempt >= max_attempts:
        return None
    return next_params(params, outcome.failing)
