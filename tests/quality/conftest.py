"""Synthetic composites with known defects, built the way the compositor builds them.

The builders are exposed as fixtures (``scene``), so the test files need no import path.
Geometry follows imaging/types.py: x right, y down; light_direction_deg counter-clockwise
from +x with y up; a cast shadow is offset by (-cos t, +sin t) in (x, y-down) pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import cv2
import numpy as np
import pytest


@dataclass
class Scene:
    source_rgb: np.ndarray
    source_mask: np.ndarray
    output_rgb: np.ndarray
    output_alpha: np.ndarray
    placement: np.ndarray  # 2x3, cv2.warpAffine convention
    background_rgb: tuple[int, int, int]
    old_background_rgb: tuple[int, int, int]


def ellipse_mask(h, w, cx, cy, rx, ry, supersample=4):
    """Anti-aliased ellipse coverage (float32 in [0, 1]) by supersampling."""
    ss = supersample
    yy, xx = np.mgrid[: h * ss, : w * ss]
    xx = (xx + 0.5) / ss - 0.5
    yy = (yy + 0.5) / ss - 0.5
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    return inside.reshape(h, ss, w, ss).mean(axis=(1, 3)).astype(np.float32)


def texture(h, w, base, amp=25.0, seed=0, grain=6.0):
    """Deterministic product texture around an sRGB base colour: smooth waves plus a
    fine grain (real products have pixel-scale detail; the blur metric needs some)."""
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    t = np.sin(xx / 7.3) * np.cos(yy / 5.1) + 0.5 * np.sin((xx + 2 * yy) / 11.0)
    rgb = np.asarray(base, np.float64)[None, None, :] + amp * t[..., None] * np.array([1.0, 0.8, 0.6])
    rgb = rgb + np.random.default_rng(seed).normal(0.0, grain, (h, w, 1))
    return np.clip(rgb, 0, 255)


def shadow_field(alpha, light_deg, offset_px, blur_px, strength, contact=0.0, contact_px=6):
    """Darkening in [0, 1]: the silhouette shifted away from the light and blurred, plus
    an optional contact blob just under the product's base."""
    h, w = alpha.shape
    theta = np.radians(light_deg)
    dx, dy = -np.cos(theta) * offset_px, np.sin(theta) * offset_px
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    cast = cv2.warpAffine(alpha, m, (w, h))
    k = int(2 * round(3 * blur_px) + 1)
    dark = strength * cv2.GaussianBlur(cast, (k, k), blur_px)
    if contact > 0:
        ys, xs = np.nonzero(alpha >= 0.5)
        base_y = ys.max()
        base = (xs[ys >= base_y - 2]).astype(np.float64)
        cx, half = base.mean(), max(4.0, (base.max() - base.min()) / 2 + 6)
        blob = ellipse_mask(h, w, cx, base_y + 1, half * 1.6, contact_px, supersample=1)
        kc = int(2 * round(contact_px) + 1)
        dark = np.maximum(dark, contact * cv2.GaussianBlur(blob, (kc, kc), contact_px / 2))
    return np.clip(dark, 0, 1) * (1 - alpha)


def make_scene(
    size=512,
    src_size=(300, 240),
    scale=1.5,
    offset=None,
    product_rgb=(180, 60, 50),
    old_bg=(40, 170, 60),
    bg=(255, 255, 255),
    textured=True,
    light_deg=None,
    shadow_offset=0.0,
    shadow_blur=6.0,
    shadow_strength=0.35,
    contact=0.0,
    halo_px=0,
    halo_rgb=(255, 255, 255),
    fringe_px=0,
    jagged=0,
    colour_shift=None,
):
    """A source photo (ellipse product on ``old_bg``) composited onto ``bg``."""
    sh, sw = src_size
    mask = ellipse_mask(sh, sw, sw / 2, sh / 2, sw * 0.36, sh * 0.4)
    if jagged:
        small = cv2.resize(mask, (sw // jagged, sh // jagged), interpolation=cv2.INTER_AREA)
        mask = cv2.resize((small >= 0.5).astype(np.float32), (sw, sh), interpolation=cv2.INTER_NEAREST)
        mask = cv2.GaussianBlur(mask, (3, 3), 0.5)
    prod = texture(sh, sw, product_rgb) if textured else np.broadcast_to(np.float64(product_rgb), (sh, sw, 3))
    src = (mask[..., None] * prod + (1 - mask[..., None]) * np.array(old_bg, np.float64)).round().astype(np.uint8)
    comp_mask = mask
    if fringe_px:  # the cut-out is too generous: old background comes along with the product
        comp_mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * fringe_px + 1,) * 2))
    if offset is None:
        offset = ((size - scale * sw) / 2, (size - scale * sh) / 2)
    c = 0.5 * (scale - 1.0)
    m = np.array([[scale, 0.0, offset[0] + c], [0.0, scale, offset[1] + c]])
    src_f = src.astype(np.float32)
    if colour_shift is not None:
        src_f = np.clip(src_f + np.asarray(colour_shift, np.float32), 0, 255)
    warped = cv2.warpAffine(src_f, m, (size, size), flags=cv2.INTER_LINEAR)
    alpha = np.clip(cv2.warpAffine(comp_mask, m, (size, size), flags=cv2.INTER_LINEAR), 0, 1)
    canvas = np.broadcast_to(np.array(bg, np.float32), (size, size, 3)).copy()
    if light_deg is not None:
        dark = shadow_field(alpha, light_deg, shadow_offset, shadow_blur, shadow_strength, contact)
        canvas *= (1 - dark)[..., None]
    if halo_px:
        outside = (alpha < 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
        ring = (outside > 0) & (dist <= halo_px)
        canvas[ring] = halo_rgb
    out = alpha[..., None] * warped + (1 - alpha[..., None]) * canvas
    return Scene(
        source_rgb=src,
        source_mask=mask,
        output_rgb=np.clip(out.round(), 0, 255).astype(np.uint8),
        output_alpha=alpha.astype(np.float32),
        placement=m,
        background_rgb=tuple(bg),
        old_background_rgb=tuple(old_bg),
    )


@pytest.fixture
def scene():
    """Builders for synthetic scenes: ``scene.make(...)``, ``scene.ellipse(...)``, ..."""
    return SimpleNamespace(make=make_scene, ellipse=ellipse_mask, shadow=shadow_field, texture=texture)
