"""What the next automatic attempt changes, given the checks the last one failed.

The policy lives in quality.defects (``plan_retry``: which defect wants which change, and
which no re-render can fix); this applies its plan to ``RenderParams``. Check names are
quality.gate's (``edge.fringe``) with an optional ``profile:`` prefix.
"""
from __future__ import annotations

from quality.defects import plan_retry
from tasks.records import RenderParams

DEFAULT_FILL = 0.85
DEFAULT_SHADOW = 0.35


def _apply(current, change):
    """``"+1"``/``"-0.05"`` add, ``"*0.6"`` multiplies, anything else replaces."""
    if isinstance(change, str) and change[:1] in "+-*":
        op, amount = change[0], float(change[1:])
        value = current * amount if op == "*" else current + (amount if op == "+" else -amount)
        return type(current)(round(value, 3)) if isinstance(current, int) and op != "*" else round(value, 3)
    return change


def next_params(previous: RenderParams, failing: list[str]) -> RenderParams | None:
    """The next attempt's parameters, or None when re-rendering cannot fix what failed
    (the SKU then goes to review with its reasons and costs no further attempt).
    Every attempt also takes a new seed (generated scenes differ; studio ignores it)."""
    plan = plan_retry(failing)
    if plan is None:
        return None
    update: dict = {"attempt": previous.attempt + 1, "seed": (previous.seed or 0) + 1}
    for key, change in plan.items():
        if key == "fill" and change == "target":
            update["fill"] = DEFAULT_FILL
            continue
        current = getattr(previous, key)
        if current is None:
            current = {"fill": DEFAULT_FILL, "shadow_strength": DEFAULT_SHADOW}[key]
        update[key] = _apply(current, change)
    if "refine_strength" in update:
        update["refine_strength"] = min(int(update["refine_strength"]), 3)
    following = previous.model_copy(update=update)
    if following.model_dump(exclude={"attempt", "seed"}) == previous.model_dump(exclude={"attempt", "seed"}):
        return None  # the plan is already in force: the same render would fail the same way
    return following
