"""What the next automatic attempt changes, given the checks the last one failed."""
from __future__ import annotations

from tasks.records import RenderParams

EDGE_CHECKS = ("edge_halo", "edge_fringe", "edge_jagged", "edge_soft", "colour_fidelity")
SHADOW_CHECKS = ("shadow_direction", "shadow_contact")
FRAMING_CHECKS = ("product_fill", "background_purity", "border_purity")


def next_params(previous: RenderParams, failing: list[str]) -> RenderParams:
    """Stronger edge refinement and colour decontamination for edge/colour failures, a
    lighter shadow for shadow failures, a new fill for framing failures, and always a new
    seed (generated scenes differ; studio scenes ignore it)."""
    checks = {name.split(":")[-1] for name in failing}
    update: dict = {"attempt": previous.attempt + 1, "seed": (previous.seed or 0) + 1}
    if checks & set(EDGE_CHECKS):
        update["refine_strength"] = min(previous.refine_strength + 1, 3)
        update["decontaminate"] = True
    if checks & set(SHADOW_CHECKS):
        update["shadow_strength"] = round((previous.shadow_strength or 0.35) * 0.6, 3)
    if checks & set(FRAMING_CHECKS):
        update["fill"] = round((previous.fill or 0.85) - 0.03, 3)
    return previous.model_copy(update=update)
