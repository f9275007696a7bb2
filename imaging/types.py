"""Small records shared by the imaging backends, the compositor and the quality gate.

Coordinate conventions (used by compose, quality and the shadow checks alike):

* Pixel coordinates are (x, y) with x to the right and y *down*, origin at the top-left
  pixel's top-left corner of the array.
* ``Placement`` maps a pixel of the *original source photo* to the output canvas:
  ``x_canvas = scale * x_source + offset_x`` and the same for y. Crops and upscales done
  along the way are folded into it, so QC can align source and output pixels exactly.
* ``light_direction_deg`` is the direction *from the product towards the light* in the
  image plane, in degrees counter-clockwise from +x with y pointing *up* (a viewer's
  convention): 90 = light from straight above, 135 = from the upper left, 45 = from the
  upper right. A cast shadow falls the opposite way: its canvas offset is
  ``(-cos θ, +sin θ)`` in (x, y-down) pixels, so light from the upper left puts the
  shadow to the lower right, and light from above puts it straight under the base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ShadowStyle = Literal["soft", "hard", "floating", "none"]


@dataclass(frozen=True)
class Placement:
    """Affine map from source-photo pixels to canvas pixels (uniform scale + shift)."""

    scale: float
    offset_x: float
    offset_y: float

    def matrix(self) -> np.ndarray:
        """The 2x3 float64 matrix for ``cv2.warpAffine`` (source -> canvas).

        Placement measures from pixel *corners*; OpenCV indexes pixel *centres*, so the
        shift gains ``0.5 * (scale - 1)`` (without it: -0.25 px at scale 0.5, +1.5 px at 4).
        """
        shift = 0.5 * (self.scale - 1.0)
        return np.array(
            [[self.scale, 0.0, self.offset_x + shift], [0.0, self.scale, self.offset_y + shift]],
            dtype=np.float64,
        )

    def then(self, other: Placement) -> Placement:
        """Compose: apply ``self`` first, then ``other``."""
        return Placement(
            scale=self.scale * other.scale,
            offset_x=other.scale * self.offset_x + other.offset_x,
            offset_y=other.scale * self.offset_y + other.offset_y,
        )

    def inverse(self) -> Placement:
        return Placement(1.0 / self.scale, -self.offset_x / self.scale, -self.offset_y / self.scale)

    @staticmethod
    def identity() -> Placement:
        return Placement(1.0, 0.0, 0.0)


@dataclass(frozen=True)
class Background:
    """A studio backdrop: a solid sRGB colour, or a vertical gradient top -> bottom."""

    kind: Literal["solid", "gradient"] = "solid"
    colour: tuple[int, int, int] = (255, 255, 255)
    colour2: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class ShadowSpec:
    """How the compositor grounds the product. See the module docstring for the angle."""

    style: ShadowStyle = "soft"
    light_direction_deg: float = 90.0
    strength: float = 0.35  # peak darkening of the backdrop under the product, 0..1


@dataclass
class Composite:
    """A finished canvas and what QC needs to check it."""

    rgb: np.ndarray  # (H, W, 3) uint8 sRGB
    product_alpha: np.ndarray  # (H, W) float32 in [0, 1]: product coverage on the canvas
    placement: Placement  # original source pixels -> canvas pixels
    shadow: ShadowSpec | None = None  # None when no shadow was drawn by us (e.g. generated)
    background: Background | None = None  # None for generated (lifestyle) scenes
    meta: dict = field(default_factory=dict)  # template name, seed, model versions...


@dataclass
class SegmentResult:
    """A product mask on the source photo's own pixel grid."""

    mask: np.ndarray  # (H, W) float32 in [0, 1], refined
    confidence: float  # 0..1, how sure the cut is (see imaging.segment)
    raw_mask: np.ndarray | None = None  # the model's own output, before refinement
    model: str = ""  # "<name>@<version>" for cache keys and the database
