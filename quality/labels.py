"""What each check is called where people read it: a plain-language name, the figure with
its unit, rounded to the digits that mean something, and the limit it was held to.

The gate's results carry a key (``market.background_purity``), a raw value (a share, a
ratio, degrees) and a ``Limit``; the HTML report (catalog/report_html.py) shows
"Background not pure white — 23 % off-white pixels, limit 40 %" instead. Every check key
the gate can emit has a label here, and every batch-consistency dimension
(``quality.consistency.DIMENSIONS``) has one too: tests/quality/test_labels.py fails for a
new check without one. Plain data and string formatting, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CheckLabel", "CHECK_LABELS", "DIMENSION_LABELS", "label_of", "significant", "describe_check"]


@dataclass(frozen=True)
class CheckLabel:
    """``problem``: what a failing or warning check means ("Background not pure white").
    ``name``: the neutral name of the figure, for tables. ``figure``: the figure's wording,
    ``{}`` where the number goes. ``unit``: "%" (the value is a share: shown x100), "px",
    "°", "×", "MB" (the value is bytes), "MP", "" (a bare number), or "yes/no" (a flag:
    no number, ``figure`` says what the failing case is)."""

    problem: str
    name: str
    figure: str
    unit: str = ""

    def value(self, value: float | None, digits: int = 2) -> str:
        """The number with its unit: ``0.0234`` as a share -> "2.3 %"."""
        if value is None:
            return "—"
        if self.unit == "yes/no":
            return "yes" if value >= 0.5 else "no"
        scaled = value * {"%": 100.0, "MB": 1 / 2**20}.get(self.unit, 1.0)
        number = significant(scaled, digits)
        return {"": number, "°": f"{number}°", "×": f"{number}×"}.get(self.unit, f"{number} {self.unit}")


def significant(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant digits (at least its whole part), no exponent,
    thousands separated: 0.012345 -> "0.012", 2.77 -> "2.8", 1234.5 -> "1,234".

    >>> significant(0.012345), significant(2.77), significant(1234.5), significant(0.0)
    ('0.012', '2.8', '1,234', '0')
    """
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _l(problem: str, name: str, figure: str, unit: str = "") -> CheckLabel:
    return CheckLabel(problem=problem, name=name, figure=figure, unit=unit)


CHECK_LABELS: dict[str, CheckLabel] = {
    # the cut against the photo (quality/cut.py, quality/split.py)
    "cut.background_inside": _l("Background left inside the product", "Backdrop inside", "{} of the product", "%"),
    "cut.background_attached": _l("Background stuck to the edge", "Backdrop on the edge", "{} of the product", "%"),
    "cut.fragments": _l("Stray background fragments", "Stray fragments", "{} of the product", "%"),
    "cut.lost_part": _l("Part of the product cut away", "Product left out", "{} of the product", "%"),
    "cut.split": _l("Thin part cut through", "Cut in two", "{} of the gap is product", "%"),
    "cut.wrong_object": _l(
        "The cut is not the product", "Backdrop round the cut", "{} of its surround is backdrop", "%"
    ),
    "cut.enclosed": _l("The cut is not the product", "Edge round the cut", "{} of the way out meets an edge", "%"),
    "source.cut_off": _l(
        "Product cut off in the photo", "Cut off in the photo", "{} of the outline on its border", "%"
    ),
    "source.resolution": _l("Source photo too small", "Enlargement", "enlarged {}", "×"),
    "segment.confidence": _l("Uncertain cut", "Cut confidence", "{} confidence", "%"),
    # the product's colour and sharpness against the photo (quality/fidelity.py)
    "colour.delta_e_mean": _l("Product colour changed", "Colour change (mean)", "mean ΔE {}"),
    "colour.delta_e_p95": _l("Product colour changed in places", "Colour change (p95)", "ΔE {} at the 95th percentile"),
    "colour.delta_e_share_above": _l(
        "Product colour changed in patches", "Changed patches", "{} of the product changed", "%"
    ),
    "colour.delta_e_of_means": _l("Colour cast on the product", "Colour cast", "ΔE {} between average colours"),
    "placement.iou": _l("Product not where the render says", "Placement overlap", "{} overlap", "%"),
    "sharpness.vs_source": _l(
        "Product blurrier than the photo", "Sharpness vs photo", "{} of the photo's sharpness", "%"
    ),
    # edges (quality/edges.py), at the source's scale
    "edge.halo": _l("Halo around the product", "Halo", "{} of the outline", "%"),
    "edge.fringe": _l("Old backdrop colour on the edge", "Colour fringe", "{} of the outline", "%"),
    "edge.transition_width": _l("Soft, pasted-on edge", "Edge width", "{} wide", "px"),
    "edge.roughness": _l("Jagged outline", "Outline roughness", "{} rough", "px"),
    # shadows, exposure, framing, the shipped file
    "shadow.direction": _l("Shadow contradicts the light", "Shadow direction", "{} off the light", "°"),
    "shadow.contact": _l("Product floats (no contact shadow)", "Contact shadow", "{} darker under the base", "%"),
    "exposure.clipped_highlights": _l("Highlights blown out", "Blown highlights", "{} of the product", "%"),
    "exposure.clipped_shadows": _l("Shadows crushed to black", "Crushed shadows", "{} of the product", "%"),
    "framing.cut_off": _l("Product runs off the frame", "Off the frame", "{} product widths on the border"),
    "artefacts.jpeg": _l("Compression artefacts", "JPEG blocking", "{} of block edges step visibly", "%"),
    "artefacts.jpeg_quality": _l("Compression artefacts", "JPEG quality", "encoded at quality {}"),
    # marketplace rules (quality/marketplace.py, quality/thresholds.MarketplaceRules)
    "market.fill": _l("Product too large or small in the frame", "Fill off target", "{} off the target fill", "%"),
    "market.border_purity": _l("Frame edge not pure white", "Edge purity", "{} off-white edge pixels", "%"),
    "market.background_purity": _l("Background not pure white", "Backdrop purity", "{} off-white pixels", "%"),
    "market.min_size": _l("Image too small for the marketplace", "Longest side (min)", "{} longest side", "px"),
    "market.max_size": _l("Image too large for the marketplace", "Longest side (max)", "{} longest side", "px"),
    "market.megapixels": _l("Over the marketplace's pixel limit", "Pixel count", "{}", "MP"),
    "market.file_size": _l("File over the marketplace's size limit", "File size", "{}", "MB"),
    "market.srgb": _l("Colour profile is not sRGB", "sRGB profile", "no sRGB profile in the file", "yes/no"),
    # marketplace rules of quality/market_rules.py
    "market.fill_range": _l("Product too large or small in the frame", "Fill", "fills {} of the frame", "%"),
    "market.min_short_side": _l("Image too small for the marketplace", "Shortest side (min)", "{} shortest side", "px"),
    "market.aspect": _l("Wrong aspect ratio for the marketplace", "Aspect ratio", "{} off the nearest allowed", "%"),
    "market.edge_clear": _l(
        "Product or shadow reaches the frame edge", "Pixels on the edge", "{} pixels on the outermost ring"
    ),
    "market.residue": _l("Grey residue on the backdrop", "Backdrop residue", "{} of the far backdrop off white", "%"),
    "market.border": _l("Border drawn round the image", "Drawn border", "{} grey-level step round the edge"),
}

# Batch consistency (quality/consistency.DIMENSIONS): an image that stands out from its batch.
DIMENSION_LABELS: dict[str, str] = {
    "brightness": "Brighter or darker than the batch",
    "white_balance": "Colour balance unlike the batch",
    "background_tone": "Backdrop tone unlike the batch",
    "scale": "Product size unlike the batch",
    "position": "Product placed unlike the batch",
}


def label_of(key: str) -> CheckLabel:
    """The label of a check key (``profile:`` prefixes are ignored); an unknown key gets
    a label made from the key itself, so a report never breaks on a new check."""
    name = key.split(":")[-1]
    return CHECK_LABELS.get(name) or CheckLabel(problem=name, name=name, figure="{}")


def describe_check(check: Mapping) -> str:
    """One line for a graded check (a ``CheckResult`` dumped to a dict): the problem, the
    figure and the limit it broke, e.g. "Background not pure white — 23 % off-white
    pixels, limit 20 %". A warning names its warn level; a pass names no limit."""
    label = label_of(check["name"])
    status, value, limit = check.get("status", "pass"), check.get("value"), check.get("threshold")
    if value is None:
        return label.problem
    if label.unit == "yes/no":
        return f"{label.problem} — {label.figure}"
    level = None
    if isinstance(limit, Mapping) and status in ("warn", "fail"):
        level = limit.get(status)
    digits = 2
    shown = label.value(value, digits)
    while level is not None and digits < 5 and shown == label.value(level, digits) and value != level:
        digits += 1  # 10.4 MB against a 10 MB limit must not read "10 MB, limit 10 MB"
        shown = label.value(value, digits)
    text = f"{label.problem} — {label.figure.format(shown)}"
    if level is None:
        return text
    lower = limit.get("worse") == "lower"
    if status == "fail":
        verb = "minimum" if lower else "limit"
    else:
        verb = "warns below" if lower else "warns above"
    return f"{text}, {verb} {label.value(level, digits)}"
