"""What a failing check means: the defect a person would name, and what a re-render can do.

Every check of the gate belongs to one defect class. A failure is reported by its class
("background inside the product"), never by the proxy metric that saw it, and the
automatic re-render loop asks :func:`plan_retry` what to change: each class says which
render parameters address it, or that re-rendering cannot help (the source is too small,
the photo cuts the product off, a profile's size rule), in which case the SKU goes to
review with its reason and costs no retry. Plain data and functions: tasks/adjust.py
applies the plan to its ``RenderParams``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Defect", "DEFECTS", "defect_of", "plan_retry", "describe_failures"]


@dataclass(frozen=True)
class Defect:
    name: str  # what a person would call it
    retry: Mapping[str, object] | None  # parameter changes that address it; None: re-rendering cannot


_CUT_AGAIN_OPEN = {"fill_holes": False, "refine_strength": "+1"}
_KEEP_MORE = {"cut_bias": -1}
_KEEP_LESS = {"cut_bias": +1}
_CLEAN_EDGE = {"decontaminate": True, "refine_strength": "+1"}

DEFECTS: dict[str, Defect] = {
    "cut.background_inside": Defect("background inside the product", _CUT_AGAIN_OPEN),
    "cut.background_attached": Defect("background stuck to the product's edge", _KEEP_LESS),
    "cut.fragments": Defect("stray background fragments", _KEEP_LESS),
    "cut.lost_part": Defect("part of the product missing", _KEEP_MORE),
    "cut.split": Defect("part of the product missing", _KEEP_MORE),  # a thin part cut through
    "source.cut_off": Defect("product cut off in the photo", None),
    # The segmenter followed another outline (a ring's hole, a box's label): a re-render
    # cuts the same photo with the same model again. A person, or another segmenter.
    "cut.wrong_object": Defect("the cut is not the product", None),
    "cut.enclosed": Defect("the cut is not the product", None),  # inside another outline: a box's label
    "source.resolution": Defect("source too small", None),
    # The segmenter's certainty is read off its own map of the photo (tasks/segment.py), which
    # no render parameter changes: another attempt runs the same model on the same preview
    # and reads the same figure. A person looks at it.
    "segment.confidence": Defect("uncertain cut", None),
    # The product's own pixels are composited back by construction (studio and generated
    # scenes alike): a colour change is a pipeline fault that another attempt repeats.
    "colour.delta_e_mean": Defect("product colour changed", None),
    "colour.delta_e_of_means": Defect("product colour changed", None),
    "colour.delta_e_p95": Defect("product colour changed in places", None),
    "colour.delta_e_share_above": Defect("product colour changed in places", None),
    "placement.iou": Defect("product not where the render says", None),
    "sharpness.vs_source": Defect("product blurred", None),
    "edge.halo": Defect("halo around the product", _CLEAN_EDGE),
    "edge.fringe": Defect("old backdrop colour on the edge", _CLEAN_EDGE),
    "edge.transition_width": Defect("soft, pasted-on edge", {"refine_strength": "+1"}),
    "edge.roughness": Defect("jagged outline", {"refine_strength": "+1"}),
    "shadow.direction": Defect("shadow contradicts the light", {"shadow_strength": "*0.6"}),
    "shadow.contact": Defect("product floats (no contact shadow)", {"shadow_strength": "*1.5"}),
    "exposure.clipped_highlights": Defect("highlights blown out", None),
    "exposure.clipped_shadows": Defect("shadows crushed to black", None),
    "artefacts.jpeg": Defect("compression artefacts", None),
    "artefacts.jpeg_quality": Defect("compression artefacts", None),
    "framing.cut_off": Defect("product cut off by the frame", {"fill": "-0.05"}),
    "market.fill": Defect("product too large or small in the frame", {"fill": "target"}),
    "market.border_purity": Defect("off-white frame edge", {"shadow_strength": "*0.6"}),
    "market.background_purity": Defect("grey or tinted backdrop", {"shadow_strength": "*0.6"}),
    "market.min_size": Defect("image too small for the marketplace", None),
    "market.max_size": Defect("image too large for the marketplace", None),
    "market.megapixels": Defect("image over the marketplace's pixel limit", None),
    "market.file_size": Defect("file over the marketplace's size limit", None),
    "market.srgb": Defect("colour profile is not sRGB", None),
    "market.fill_range": Defect("product too large or small in the frame", {"fill": "target"}),
    "market.min_short_side": Defect("image too small for the marketplace", None),
    "market.aspect": Defect("wrong aspect ratio for the marketplace", None),
    "market.edge_clear": Defect("product or shadow reaches the frame edge", {"fill": "-0.05"}),
    "market.residue": Defect("grey residue on the backdrop", None),
    "market.border": Defect("border drawn round the image", None),
}


def defect_of(check: str) -> Defect:
    """The defect class of a check name (``profile:`` prefixes are ignored).

    >>> defect_of("amazon-main:cut.background_inside").name
    'background inside the product'
    """
    name = check.split(":")[-1]
    if name not in DEFECTS:
        raise KeyError(f"check {name!r} has no defect class in quality.defects.DEFECTS")
    return DEFECTS[name]


def plan_retry(failing: Iterable[str]) -> dict[str, object] | None:
    """Merged parameter changes for a re-render, or None when nothing a re-render changes
    can fix the failures (any failure that no re-render can fix sends the SKU to review
    at once: another attempt would cost the same and fail the same way).

    >>> plan_retry(["amazon-main:cut.background_inside", "shopify:edge.halo"])
    {'fill_holes': False, 'refine_strength': '+1', 'decontaminate': True}
    >>> plan_retry(["amazon-main:source.resolution", "amazon-main:edge.halo"]) is None
    True
    """
    plan: dict[str, object] = {}
    for check in failing:
        defect = defect_of(check)
        if defect.retry is None:
            return None
        for key, value in defect.retry.items():
            if plan.get(key, value) != value:
                return None  # contradictory changes (more and less of the cut, a stronger and
                # a lighter shadow): whichever came first would decide; a person must look
            plan[key] = value
    return plan


def describe_failures(failing: Iterable[str], details: Mapping[str, str] | None = None) -> str:
    """One line naming each failing defect once, with the profiles it failed on.

    ``details`` maps a check name (with profile prefix) to a specific reason that replaces
    the class name (e.g. "source too small for amazon-main: needs 5.7x enlargement").

    >>> describe_failures(["amazon-main:edge.halo", "shopify:edge.halo", "amazon-main:cut.lost_part"])
    'halo around the product (amazon-main, shopify); part of the product missing (amazon-main)'
    """
    details = details or {}
    seen: dict[str, list[str]] = {}
    for check in failing:
        profile, _, name = check.rpartition(":")
        if check in details:  # a specific statement names its own profile
            seen.setdefault(details[check], [])
            continue
        profiles = seen.setdefault(defect_of(name).name, [])
        if profile and profile not in profiles:
            profiles.append(profile)
    return "; ".join(f"{label} ({', '.join(p)})" if p else label for label, p in seen.items())


def attempt_badness(checks: Iterable[Mapping]) -> tuple[int, int, float]:
    """How bad an attempt's checks are, for keeping the best attempt: (failing checks,
    warnings, summed excess over the fail levels as ratios). Lower is better; ``checks``
    are ``CheckResult`` dicts (``model_dump``) of all the attempt's profiles.

    >>> lim = {"warn": 0.004, "fail": 0.006, "worse": "higher"}
    >>> a = [{"name": "cut.background_inside", "status": "fail", "value": 0.06, "threshold": lim}]
    >>> b = [{"name": "cut.background_inside", "status": "fail", "value": 0.01, "threshold": lim}]
    >>> attempt_badness(b) < attempt_badness(a)
    True
    """
    fails = warns = 0
    excess = 0.0
    for c in checks:
        if c.get("status") == "warn":
            warns += 1
        if c.get("status") != "fail":
            continue
        fails += 1
        limit, value = c.get("threshold"), c.get("value")
        if limit and value is not None and limit["fail"]:
            ratio = value / limit["fail"] if limit["worse"] == "higher" else limit["fail"] / max(value, 1e-9)
            excess += max(0.0, ratio - 1.0)
        else:
            excess += 1.0
    return fails, warns, round(excess, 6)
