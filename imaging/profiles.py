"""Marketplace export profiles: what each exported file must look like, as configuration.

Built-in profiles (``BUILTIN_PROFILES``):

| profile | format | canvas | product fill | background | limits |
|---|---|---|---|---|---|
| ``amazon-main`` | JPEG q90, sRGB ICC | 2000 x 2000 | 0.85 of the longer side | exactly RGB 255,255,255 | longest side >= 1600, <= 10,000 px, <= 10 MB; nothing on the frame edge; no residue |
| ``shopify`` | JPEG q90, sRGB ICC | 2048 x 2048 | 0.85 | the template's backdrop | sides <= 4472 px, <= 20 MP, <= 20 MB |
| ``transparent`` | PNG with alpha, sRGB ICC | longest side 2048, aspect of the product | 0.95 | none (alpha cut-out, no shadow) | sides <= 2048 px |
| ``google-merchant`` | JPEG q90, sRGB ICC | 1500 x 1500, smaller when the source is (not below 250) | 0.85, 0.75-0.90 | white | >= 250 px, <= 64 MP, <= 16 MB; no border; product enlarged <= 1.05x |
| ``ebay`` | JPEG q90, sRGB ICC | 1600 x 1600 | 0.85 | the template's backdrop | longest side >= 500 px; no border |
| ``etsy`` | JPEG q90, sRGB ICC | 2000 x 2000 | 0.85 | the template's backdrop (lifestyle allowed) | shortest side >= 2000 px; 1:1 or 4:3 |
| ``zalando`` | JPEG q90, sRGB ICC | 1801 x 2600 | 0.85 | white (packshot) | exactly 1801 x 2600, <= 20 MB |

Field meanings: ``canvas`` is a fixed (w, h); ``longest_side`` instead sizes the canvas
to the product's own aspect. ``fill`` is the product box's share of the canvas's longer
side (see ``imaging.compose``). ``background``: ``"white"`` forces a solid 255,255,255
backdrop, ``"template"`` uses the studio template's, ``"transparent"`` exports an alpha
cut-out. ``shadow``: ``"template"`` uses the template's shadow, ``"none"`` draws none.
``min_side`` bounds the canvas's *longest* side from below; ``max_side`` bounds *every*
side; ``max_megapixels`` the area; ``max_bytes`` the file (quality is lowered to fit).
``naming`` is a pattern over ``{profile}``, ``{ext}`` and ``{sku}``, e.g.
``"{profile}.{ext}"``; it may not contain a path. Marketplace rules the gate checks
(quality/market_rules.py): ``min_fill``/``max_fill`` the allowed fill, ``min_short_side``
every side's minimum, ``aspect_ratios`` the allowed ``[w, h]`` ratios, ``max_enlargement``
"no upscaled images" (the canvas shrinks, not below ``min_side``, so the product is drawn
at most this many times its source pixels; the gate refuses more), ``edge_clear`` nothing
but the white backdrop on the frame's outermost ring, ``residue_free`` no grey residue on
the backdrop away from the product (both need ``background: white``), ``frameless`` no
border drawn round the image.

Add or override profiles with ``load_profiles(extra)``, where ``extra`` is a mapping of
profile name -> fields (as read from YAML). A built-in name takes only the fields given,
e.g. ``{"amazon-main": {"quality": 95}}``; a new name needs at least ``format``,
``background`` and ``canvas`` or ``longest_side``. Bad config raises ``ValueError``
(pydantic's ``ValidationError``) naming the field.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imaging.encode import fit_bytes
from imaging.provenance import xmp_packet
from imaging.types import Background, Composite, ShadowSpec

WHITE = Background("solid", (255, 255, 255))
_EXTENSIONS = {"jpeg": ("jpg", "jpeg"), "webp": ("webp",), "png": ("png",)}
_NAMING_FIELDS = {"profile", "ext", "sku"}


def _check_naming(pattern: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        raise ValueError(f"naming {pattern!r} is not a valid pattern: {exc}") from exc
    if not fields <= _NAMING_FIELDS:
        raise ValueError(f"naming {pattern!r} may only use {sorted(_NAMING_FIELDS)}")
    if "/" in pattern or "\\" in pattern or pattern.startswith(".") or not pattern.endswith(".{ext}"):
        raise ValueError(f"naming {pattern!r} must be a plain file name ending in .{{ext}}")


class ExportProfile(BaseModel):
    """One export target. Frozen; validated on construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="profile id, used in file names")
    format: Literal["jpeg", "webp", "png"] = Field(description="encoder")
    extension: str = Field(description="file extension; defaults to the format's usual one")
    canvas: tuple[int, int] | None = Field(default=None, description="fixed canvas (w, h) in px")
    longest_side: int | None = Field(default=None, gt=0, description="canvas follows product aspect")
    fill: float = Field(default=0.85, gt=0.0, le=1.0, description="product box / canvas longer side")
    background: Literal["template", "white", "transparent"] = Field(description="backdrop rule")
    shadow: Literal["template", "none"] = Field(default="template", description="shadow rule")
    quality: int = Field(default=90, ge=1, le=100, description="JPEG/WebP quality")
    min_side: int | None = Field(default=None, gt=0, description="longest side must be >= this")
    max_side: int | None = Field(default=None, gt=0, description="every side must be <= this")
    max_megapixels: float | None = Field(default=None, gt=0.0, description="w * h / 1e6 limit")
    max_bytes: int | None = Field(default=None, gt=0, description="file size limit")
    icc: bool = Field(default=True, description="embed the sRGB ICC profile")
    naming: str = Field(default="{profile}.{ext}", description="file name pattern")
    min_fill: float | None = Field(default=None, gt=0.0, le=1.0, description="gate: fill must be >= this")
    max_fill: float | None = Field(default=None, gt=0.0, le=1.0, description="gate: fill must be <= this")
    min_short_side: int | None = Field(default=None, gt=0, description="every side must be >= this")
    aspect_ratios: tuple[tuple[int, int], ...] | None = Field(
        default=None, description="allowed w:h ratios, e.g. [[1, 1], [4, 3]]"
    )
    max_enlargement: float | None = Field(
        default=None, ge=1.0, description="no upscaled images: canvas px per source px of the product, at most"
    )
    edge_clear: bool = Field(default=False, description="gate: no product or shadow on the frame edge")
    residue_free: bool = Field(default=False, description="gate: no grey residue on the backdrop")
    frameless: bool = Field(default=False, description="gate: no border drawn round the image")

    @model_validator(mode="before")
    @classmethod
    def _default_extension(cls, data):
        if isinstance(data, dict) and data.get("extension") is None and data.get("format") in _EXTENSIONS:
            data = {**data, "extension": _EXTENSIONS[data["format"]][0]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ExportProfile:
        if self.extension not in _EXTENSIONS[self.format]:
            raise ValueError(f"extension {self.extension!r} does not fit format {self.format!r}")
        if (self.canvas is None) == (self.longest_side is None):
            raise ValueError("give exactly one of canvas (w, h) or longest_side")
        if self.canvas is not None and min(self.canvas) <= 0:
            raise ValueError(f"canvas sides must be positive, got {self.canvas}")
        if self.background == "transparent" and self.format == "jpeg":
            raise ValueError("a transparent background needs png or webp (JPEG has no alpha)")
        sides = self.canvas or (self.longest_side, self.longest_side)
        if self.min_side is not None and max(sides) < self.min_side:
            raise ValueError(f"canvas longest side {max(sides)} is under min_side {self.min_side}")
        if self.max_side is not None and max(sides) > self.max_side:
            raise ValueError(f"canvas side {max(sides)} is over max_side {self.max_side}")
        if self.max_megapixels is not None and sides[0] * sides[1] / 1e6 > self.max_megapixels:
            raise ValueError(f"canvas {sides} is over {self.max_megapixels} MP")
        if not (self.min_fill or 0.0) <= self.fill <= (self.max_fill or 1.0):
            raise ValueError(f"fill {self.fill} is outside min_fill..max_fill ({self.min_fill}..{self.max_fill})")
        if self.canvas is not None and self.min_short_side is not None and min(self.canvas) < self.min_short_side:
            raise ValueError(f"canvas shortest side {min(self.canvas)} is under min_short_side {self.min_short_side}")
        if self.aspect_ratios is not None:
            if not self.aspect_ratios or any(min(r) <= 0 for r in self.aspect_ratios):
                raise ValueError(f"aspect_ratios must be positive [w, h] pairs, got {self.aspect_ratios}")
            if self.canvas is not None and not any(
                abs(self.canvas[0] * b / (self.canvas[1] * a) - 1.0) <= 0.01 for a, b in self.aspect_ratios
            ):
                raise ValueError(f"canvas {self.canvas} has none of the aspect_ratios {self.aspect_ratios}")
        if (self.edge_clear or self.residue_free) and self.background != "white":
            raise ValueError("edge_clear and residue_free are rules for a white background")
        _check_naming(self.naming)
        return self

    def filename(self, sku: str = "") -> str:
        """The export file name, e.g. ``amazon-main.jpg``."""
        if "/" in sku or "\\" in sku or sku in (".", ".."):
            raise ValueError(f"sku {sku!r} cannot be used in a file name")
        return self.naming.format(profile=self.name, ext=self.extension, sku=sku)


@dataclass(frozen=True)
class CanvasSpec:
    """Everything ``imaging.compose.compose_studio`` needs from a profile + template."""

    size: tuple[int, int]  # (w, h)
    fill: float
    background: Background  # the matte colour when transparent
    shadow: ShadowSpec
    transparent: bool


BUILTIN_PROFILES: Mapping[str, ExportProfile] = MappingProxyType(
    {
        "amazon-main": ExportProfile(
            name="amazon-main",
            format="jpeg",
            canvas=(2000, 2000),
            fill=0.85,
            background="white",
            quality=90,
            min_side=1600,
            max_side=10_000,
            max_bytes=10_000_000,
            edge_clear=True,
            residue_free=True,
        ),
        "shopify": ExportProfile(
            name="shopify",
            format="jpeg",
            canvas=(2048, 2048),
            fill=0.85,
            background="template",
            quality=90,
            max_side=4472,
            max_megapixels=20.0,
            max_bytes=20_000_000,
        ),
        "transparent": ExportProfile(
            name="transparent",
            format="png",
            longest_side=2048,
            fill=0.95,
            background="transparent",
            shadow="none",
            max_side=2048,
        ),
        # Google Merchant Center: JPEG/WebP/PNG, >= 100 px (250 for apparel), <= 64 MP and
        # 16 MB, the product 75-90 % of the image, no borders/text/watermarks, no upscaled
        # images: 1500 px when the source has the pixels, smaller (not below 250) when not.
        "google-merchant": ExportProfile(
            name="google-merchant",
            format="jpeg",
            canvas=(1500, 1500),
            fill=0.85,
            min_fill=0.75,
            max_fill=0.90,
            background="white",
            min_side=250,
            max_megapixels=64.0,
            max_bytes=16_000_000,
            max_enlargement=1.05,
            frameless=True,
        ),
        # eBay: >= 500 px on the longest side, 1600 recommended (zoom), no borders.
        "ebay": ExportProfile(
            name="ebay",
            format="jpeg",
            canvas=(1600, 1600),
            background="template",
            min_side=500,
            frameless=True,
        ),
        # Etsy: 2000 px on the shortest side, 4:3 or square; the item itself (lifestyle allowed).
        "etsy": ExportProfile(
            name="etsy",
            format="jpeg",
            canvas=(2000, 2000),
            background="template",
            min_short_side=2000,
            aspect_ratios=((1, 1), (4, 3)),
        ),
        # Zalando: 1801 x 2600 (1 : 1.44) packshot on white, JPEG, <= 20 MB.
        "zalando": ExportProfile(
            name="zalando",
            format="jpeg",
            canvas=(1801, 2600),
            background="white",
            min_side=2600,
            min_short_side=1801,
            aspect_ratios=((1801, 2600),),
            max_bytes=20_000_000,
        ),
    }
)


def load_profiles(extra: Mapping[str, Mapping] | None = None) -> dict[str, ExportProfile]:
    """Built-ins plus ``extra`` (name -> fields); returns a new dict, built-ins untouched."""
    profiles = dict(BUILTIN_PROFILES)
    if extra is None:
        return profiles
    if not isinstance(extra, Mapping):
        raise ValueError(f"profiles config must be a mapping of name -> fields, got {type(extra).__name__}")
    for name, fields in extra.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"profile {name!r}: fields must be a mapping, got {type(fields).__name__}")
        if fields.get("name", name) != name:
            raise ValueError(f"profile {name!r}: 'name' field says {fields['name']!r}")
        base = profiles[name].model_dump() if name in profiles else {}
        if "format" in fields:
            base.pop("extension", None)
        if "canvas" in fields or "longest_side" in fields:  # one replaces the other
            base.pop("canvas", None)
            base.pop("longest_side", None)
        profiles[name] = ExportProfile.model_validate({**base, **fields, "name": name})
    return profiles


def profile_canvas(
    profile: ExportProfile,
    template_background: Background | None,
    template_shadow: ShadowSpec | None = None,
    *,
    product_size: tuple[int, int] | None = None,
    source_product_px: float | None = None,
    fill: float | None = None,
) -> CanvasSpec:
    """Resolve a profile against a studio template. ``product_size`` (w, h of the product
    box, any unit) is needed for ``longest_side`` profiles; the template's backdrop only for
    ``background="template"``. ``source_product_px`` (the product box's longest side in
    source pixels) shrinks a ``max_enlargement`` profile's canvas to what the source
    supports, at the render's ``fill`` (default the profile's)."""
    if profile.canvas is not None:
        size = profile.canvas
    else:
        if product_size is None or min(product_size) <= 0:
            raise ValueError(f"profile {profile.name!r} sizes the canvas from the product: pass product_size")
        long_side = profile.longest_side
        ratio = min(product_size) / max(product_size)
        short = max(1, min(long_side, math.ceil(long_side * ratio)))
        size = (long_side, short) if product_size[0] >= product_size[1] else (short, long_side)
    transparent = profile.background == "transparent"
    if profile.background == "template":
        if template_background is None:
            raise ValueError(f"profile {profile.name!r} uses the template background but none was given")
        background = template_background
    else:
        background = WHITE
    no_shadow = ShadowSpec(style="none")
    shadow = no_shadow if transparent or profile.shadow == "none" else (template_shadow or no_shadow)
    if profile.max_enlargement is not None and source_product_px is not None:
        size = _no_upscaling(profile, size, source_product_px, fill or profile.fill)
    return CanvasSpec(size=size, fill=profile.fill, background=background, shadow=shadow, transparent=transparent)


def _no_upscaling(profile: ExportProfile, size: tuple[int, int], source_px: float, fill: float) -> tuple[int, int]:
    """The canvas shrunk (aspect kept) so the product, ``source_px`` long in its source,
    is drawn at most ``max_enlargement`` times that; never below ``min_side`` (the gate
    then refuses the render as upscaled)."""
    if source_px <= 0:
        raise ValueError(f"source_product_px must be positive, got {source_px}")
    factor = min(1.0, source_px * profile.max_enlargement / (fill * max(size)))
    if profile.min_side is not None:
        factor = max(factor, profile.min_side / max(size))
    factor = min(1.0, factor)
    return (max(1, math.floor(size[0] * factor)), max(1, math.floor(size[1] * factor)))


def encode_for_profile(
    profile: ExportProfile, composite: Composite, *, min_quality: int = 60, provenance: str | None = None
) -> bytes:
    """Encode a finished canvas for ``profile``: checks the size rules, embeds ICC as
    configured, keeps alpha only for transparent profiles, lowers quality to fit
    ``max_bytes``; ``provenance`` (an IPTC digital source type, imaging/provenance.py) is
    written as XMP. Raises ``ValueError`` when a rule cannot be met."""
    height, width = composite.rgb.shape[:2]
    if profile.min_side is not None and max(width, height) < profile.min_side:
        raise ValueError(f"{profile.name}: longest side {max(width, height)} < min_side {profile.min_side}")
    if profile.max_side is not None and max(width, height) > profile.max_side:
        raise ValueError(f"{profile.name}: side {max(width, height)} > max_side {profile.max_side}")
    if profile.max_megapixels is not None and width * height / 1e6 > profile.max_megapixels:
        raise ValueError(f"{profile.name}: {width}x{height} is over {profile.max_megapixels} MP")
    if profile.min_short_side is not None and min(width, height) < profile.min_short_side:
        raise ValueError(
            f"{profile.name}: shortest side {min(width, height)} < min_short_side {profile.min_short_side}"
        )
    alpha = composite.product_alpha if profile.background == "transparent" else None
    data, _ = fit_bytes(
        composite.rgb,
        alpha,
        fmt=profile.format,
        max_bytes=profile.max_bytes or 2**62,
        quality=profile.quality,
        min_quality=min(min_quality, profile.quality),
        icc=profile.icc,
        xmp=xmp_packet(provenance) if provenance is not None else None,
    )
    return data
