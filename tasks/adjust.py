"""What the next automatic attempt changes, given the checks the last one failed.

Check names are quality.gate's (``edge.fringe``) with an optional ``profile:`` prefix.
"""
from __future__ import annotations

from tasks.records import RenderParams

EDGE_CHECKS = {"edge.halo", "edge.fringe", "edge.roughness", "edge.transition_width",
               "colour.delta_e_p95", "colour.delta_e_share_above", "segment.confidence"}
SHADOW_CHECKS = {"shadow.direction", "shadow.contact", "market.background_purity", "market.border_purity"}
FRAMING_CHECKS = {"market.fill", "market.border_purity"}


def next_params(previous: RenderParams, failing: list[str]) -> RenderParams:
    """Stronger edge refinement and colour decontamination for edge/colour failures, a
    lighter shadow for shadow and backdrop-purity failures, a smaller fill when the product
    crowds the frame, and always a new seed (generated scenes differ; studio ignores it)."""
    checks = {name.split(":")[-1] for name in failing}
    update: dict = {"attempt": previous.attempt + 1, "seed": (previous.seed or 0) + 1}
    if checks & EDGE_CHECKS:
        update["refine_strength"] = min(previous.refine_strength + 1, 3)
        update["decontaminate"] = True
    if checks & SHADOW_CHECKS:
        update["shadow_strength"] = round((previous.shadow_strength or 0.35) * 0.6, 3)
    if checks & FRAMING_CHECKS:
        update["fill"] = round((previous.fill or 0.85) - 0.03, 3)
    return previous.model_copy(update=update)
