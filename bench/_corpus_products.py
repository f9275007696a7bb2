"""Product photos for bench/qc_corpus.py: anti-aliased shapes, materials, real backdrops.

Shapes are signed distance fields in product units (longest side ~1, x right, y down);
coverage = clip(0.5 - distance_px, 0, 1), the exact box-filtered (supersampled) coverage of
a straight edge, so edges are partial like a photo's. Backdrops are scikit-image's bundled
photos (textures tinted, colour crops tiled by mirroring) or a seamless paper sweep.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import skimage.data as skd

SHAPES = ("bottle", "box", "mug", "ring", "frame", "lamp", "stand", "shoe", "jar", "headphones")
MATERIALS = ("matte", "glossy", "smooth")
COLOURS = ("saturated", "neutral", "white", "black")
SIZES = ("small", "medium", "large")
HAS_HOLE = frozenset({"mug", "ring", "frame"})
HAS_THIN = frozenset({"lamp", "stand"})
LABELLED = frozenset({"bottle", "box", "jar", "mug"})
CANVAS_PRODUCT_PX = 0.85 * 2000  # amazon-main draws the product's longest side this long
MAX_SIDE, MAX_PIXELS = 2000, 3_300_000

_SATURATED = [(200, 32, 40), (30, 80, 200), (30, 150, 60), (240, 140, 20), (120, 40, 160), (225, 195, 30)]
_NEUTRAL = [(150, 130, 110), (112, 112, 118), (120, 80, 50), (172, 162, 142)]
_GOLD, _WHITE, _BLACK = (212, 172, 60), (236, 236, 232), (30, 29, 32)
LIGHT_BACKDROPS = ("seamless_white", "paper", "sky", "astronaut")
DARK_BACKDROPS = ("seamless_dark", "gravel_dark", "brick_dark")
ANY_BACKDROPS = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "fur",
    "astronaut",
    "paper",
    "sky",
    "seamless_grey",
    "seamless_white",
)
# name -> (loader, tint for grey textures or None for colour crops, contrast)
_TEXTURES = {
    "brick": (skd.brick, (196, 122, 96), 1.0),
    "brick_dark": (skd.brick, (58, 50, 48), 1.0),
    "grass": (skd.grass, (118, 158, 88), 1.0),
    "gravel": (skd.gravel, (176, 166, 150), 1.0),
    "gravel_dark": (skd.gravel, (66, 63, 60), 1.0),
    "paper": (skd.text, (250, 246, 236), 0.6),
    "sky": (lambda: skd.camera()[0:90, 0:180], (236, 240, 250), 1.0),
    "coffee": (lambda: skd.coffee()[150:400, 480:600], None, 1.0),
    "fur": (lambda: skd.chelsea()[0:75, 150:330], None, 1.0),
    "astronaut": (lambda: skd.astronaut()[0:110, 310:385], None, 1.0),
}
_SEAMLESS = {
    "seamless_white": ((247, 247, 245), (226, 226, 223)),
    "seamless_grey": ((180, 180, 178), (148, 148, 146)),
    "seamless_dark": ((50, 50, 53), (28, 28, 30)),
}

# ---------------------------------------------------------------- shapes (SDF, units)


def _box(u, v, cx, cy, hw, hh, r=0.0):
    qx, qy = np.abs(u - cx) - (hw - r), np.abs(v - cy) - (hh - r)
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def _ellipse(u, v, cx, cy, a, b):
    x, y = (u - cx) / a, (v - cy) / b
    k = np.hypot(x, y)
    grad = np.hypot(x / a, y / b) / np.maximum(k, 1e-6)
    return (k - 1.0) / np.maximum(grad, 1e-6)


def _segment(u, v, ax, ay, bx, by, r):
    px, py, dx, dy = u - ax, v - ay, bx - ax, by - ay
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(px - t * dx, py - t * dy) - r


def _union(*sdfs):
    return np.minimum.reduce(np.broadcast_arrays(*sdfs))


def _shape(name: str, u, v, px: float):
    """(sdf, variants): variants are the product with one structural part missing."""
    thin = max(1.3 * px, 0.0042)  # stem/leg half-width: >= 1.3 source px
    if name == "bottle":
        return _union(
            _box(u, v, 0, 0.13, 0.18, 0.37, 0.05),
            _ellipse(u, v, 0, -0.22, 0.18, 0.12),
            _box(u, v, 0, -0.36, 0.065, 0.1, 0.01),
            _box(u, v, 0, -0.455, 0.075, 0.045, 0.012),
        ), {}
    if name == "box":
        return _box(u, v, 0, 0, 0.5, 0.36, 0.012), {}
    if name == "mug":
        body = _box(u, v, -0.12, 0, 0.33, 0.4, 0.05)
        handle = np.maximum(np.abs(np.hypot(u - 0.2, v + 0.02) - 0.17) - 0.045, 0.2 - u)
        return _union(body, handle), {"handle": body}
    if name == "ring":
        return np.abs(np.hypot(u, v) - 0.4) - 0.1, {}
    if name == "frame":
        return np.maximum(_box(u, v, 0, 0, 0.4, 0.5, 0.006), -_box(u, v, 0, 0, 0.3, 0.4, 0.002)), {}
    if name == "lamp":
        base = _ellipse(u, v, 0, 0.46, 0.2, 0.04)
        n = np.array([0.35, 0.12]) / np.hypot(0.35, 0.12)
        shade = np.maximum(_box(u, v, 0, -0.325, 0.28, 0.175, 0.01), (np.abs(u) - 0.16) * n[0] + (v + 0.5) * n[1])
        stem = _segment(u, v, 0, 0.44, 0, -0.2, thin)
        cut = np.maximum(stem, 0.03 - np.abs(v - 0.12))  # the stem with a gap at 0.09..0.15
        return _union(base, shade, stem), {"stem": _union(base, shade, cut)}
    if name == "stand":
        seat = _box(u, v, 0, -0.38, 0.36, 0.05, 0.02)
        legs = [
            _segment(u, v, -0.28, -0.35, -0.38, 0.45, thin),
            _segment(u, v, 0.28, -0.35, 0.38, 0.45, thin),
            _segment(u, v, 0.06, -0.35, 0.1, 0.42, thin * 1.2),
        ]
        return _union(seat, *legs), {"leg": _union(seat, *legs[1:])}
    if name == "shoe":
        return _union(
            _box(u, v, 0, 0.2, 0.5, 0.05, 0.04),
            _ellipse(u, v, 0.18, 0.08, 0.32, 0.14),
            _box(u, v, -0.3, -0.02, 0.19, 0.2, 0.09),
        ), {}
    if name == "jar":
        return _union(_box(u, v, 0, 0.07, 0.4, 0.4, 0.12), _box(u, v, 0, -0.38, 0.36, 0.095, 0.02)), {}
    if name == "headphones":
        band = np.maximum(np.abs(np.hypot(u, v + 0.02) - 0.4) - 0.035, v - 0.0)
        cups = [_box(u, v, s * 0.4, 0.2, 0.09, 0.18, 0.06) for s in (-1, 1)]
        return _union(band, *cups), {"cup": _union(band, cups[0])}
    raise ValueError(name)


# (width, height) in units, and the printed label's box (x0, y0, x1, y1) where there is one
EXTENT = {
    "bottle": (0.36, 1.0),
    "box": (1.0, 0.72),
    "mug": (0.87, 0.8),
    "ring": (1.0, 1.0),
    "frame": (0.8, 1.0),
    "lamp": (0.56, 1.0),
    "stand": (0.8, 0.88),
    "shoe": (1.0, 0.47),
    "jar": (0.8, 0.95),
    "headphones": (0.98, 0.84),
}
CENTRE = {"mug": (-0.015, 0.0), "stand": (0.0, 0.01), "shoe": (0.0, 0.015), "headphones": (0.0, -0.035)}
LABEL_BOX = {
    "bottle": (-0.15, 0.0, 0.15, 0.3),
    "box": (-0.3, -0.12, 0.3, 0.18),
    "mug": (-0.36, -0.12, 0.1, 0.14),
    "jar": (-0.3, -0.05, 0.3, 0.25),
}

# ---------------------------------------------------------------- backdrops


@cache
def _texture(name: str) -> np.ndarray:
    load, tint, contrast = _TEXTURES[name]
    img = load().astype(np.float32)
    if tint is None:
        return img
    g = img / max(float(img.mean()), 1.0)
    return np.clip(np.float32(tint) * (1.0 + contrast * (g - 1.0))[..., None], 0, 255)


def backdrop(name: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 sRGB backdrop."""
    if name in _SEAMLESS:
        top, bottom = (np.float32(c) for c in _SEAMLESS[name])
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] ** 1.5
        x = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None]
        return (top + (bottom - top) * t) * (1.0 - 0.04 * x * x)
    tex = _texture(name)
    k = max(rng.uniform(1.0, 2.0), 320.0 / min(tex.shape[:2]))
    tex = cv2.resize(tex, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    oy, ox = (int(rng.integers(0, s)) for s in tex.shape[:2])
    reps = (height + oy) // tex.shape[0] + 1, (width + ox) // tex.shape[1] + 1
    tiled = np.pad(
        tex,
        ((0, reps[0] * tex.shape[0] - tex.shape[0]), (0, reps[1] * tex.shape[1] - tex.shape[1]), (0, 0)),
        mode="symmetric",
    )
    return np.clip(tiled[oy : oy + height, ox : ox + width], 0, 255)


# ---------------------------------------------------------------- the product photo


def choose(seed: int, index: int) -> dict:
    """The product's attributes and generation parameters, from (seed, index) only."""
    rng = np.random.default_rng([seed, index, 7])
    j = index + 7 * seed
    shape, material = SHAPES[j % len(SHAPES)], MATERIALS[j % 3]
    colour, size = COLOURS[(j + j // 4) % 4], SIZES[(j + j // 3) % 3]
    pool = LIGHT_BACKDROPS if colour == "white" else DARK_BACKDROPS if colour == "black" else ANY_BACKDROPS
    longest = {
        "small": CANVAS_PRODUCT_PX / rng.uniform(4.2, 5.8),
        "medium": rng.uniform(600, 1000),
        "large": rng.uniform(1500, 1800),
    }[size]
    rgb = {
        "saturated": _GOLD
        if shape == "ring" and material == "smooth"
        else _SATURATED[int(rng.integers(len(_SATURATED)))],
        "neutral": _NEUTRAL[int(rng.integers(len(_NEUTRAL)))],
        "white": _WHITE,
        "black": _BLACK,
    }[colour]
    attrs = {
        "shape": shape,
        "material": material,
        "colour": colour,
        "backdrop": str(rng.choice(pool)),
        "size": size,
        "has_hole": shape in HAS_HOLE,
        "has_thin_part": shape in HAS_THIN,
        "label": bool(shape in LABELLED and rng.random() < 0.7),
        "template": "white_studio_hard" if j % 4 == 3 else "white_studio",
        "seed": seed,
        "index": index,
    }
    gen = {
        "longest": float(longest),
        "rgb": rgb,
        "photo_seed": int(rng.integers(2**31)),
        "margin": rng.uniform(0.12, 0.35),
        "jitter": rng.uniform(-0.5, 0.5, 2),
        "contact": bool(rng.random() < 0.5),
        "optical_blur": float(rng.choice([0.0, 0.5, 0.6, 0.7])),
        "noise": rng.uniform(1.5, 3.0),
    }
    return {"name": f"{shape}-{index:02d}", "attrs": attrs, "gen": gen}


def photo(spec: dict, longest: float | None = None):
    """(source_rgb uint8, true_mask float32 in 1/255 steps, {variant: mask}) for ``spec``."""
    attrs, gen = spec["attrs"], spec["gen"]
    shape = attrs["shape"]
    rng_mat, rng_label, rng_bg, rng_noise = (np.random.default_rng([gen["photo_seed"], k]) for k in range(4))
    ext_w, ext_h = EXTENT[shape]
    s = (longest or gen["longest"]) / max(ext_w, ext_h)  # px per unit
    pw, ph = ext_w * s, ext_h * s
    m = gen["margin"] * max(pw, ph) + 24
    m_w = max(40.0, min(m, (MAX_SIDE - pw) / 2))
    m_h = max(40.0, min(m, (MAX_SIDE - ph) / 2))
    while (pw + 2 * m_w) * (ph + 2 * m_h) > MAX_PIXELS and min(m_w, m_h) > 40:
        m_w, m_h = max(40.0, m_w * 0.9), max(40.0, m_h * 0.9)
    width, height = int(round(pw + 2 * m_w)), int(round(ph + 2 * m_h))
    cx0, cy0 = CENTRE.get(shape, (0.0, 0.0))
    cx = width / 2 + gen["jitter"][0] * (m_w - 30) - cx0 * s
    cy = height / 2 + gen["jitter"][1] * (m_h - 30) - cy0 * s
    pad = 0.03 * max(pw, ph) + 4
    x0, x1 = max(0, int(cx + cx0 * s - pw / 2 - pad)), min(width, int(cx + cx0 * s + pw / 2 + pad) + 1)
    y0, y1 = max(0, int(cy + cy0 * s - ph / 2 - pad)), min(height, int(cy + cy0 * s + ph / 2 + pad) + 1)
    u = ((np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / s)[None, :]
    v = ((np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / s)[:, None]
    sdf, variants = _shape(shape, u, v, 1.0 / s)
    cov = np.clip(0.5 - sdf * s, 0.0, 1.0).astype(np.float32)
    colour = _material(attrs, gen["rgb"], sdf * s, u, v, s, rng_mat)
    if attrs["label"]:
        _label(colour, sdf * s, u, v, s, shape, rng_label)

    bg = backdrop(attrs["backdrop"], height, width, rng_bg)
    if gen["contact"]:
        rows = np.flatnonzero(cov.max(axis=1) >= 0.5)
        cols = np.flatnonzero(cov[rows[-1] - max(2, int(0.05 * ph)) : rows[-1] + 1].max(axis=0) >= 0.5)
        spot = np.zeros((height, width), np.float32)
        centre = (int(x0 + (cols[0] + cols[-1]) / 2), int(y0 + rows[-1]))
        cv2.ellipse(spot, centre, (int(0.55 * (cols[-1] - cols[0]) + 2), int(0.03 * ph + 2)), 0, 0, 360, 1.0, -1)
        spot = cv2.GaussianBlur(spot, (0, 0), 0.02 * max(pw, ph) + 1)
        bg *= (1.0 - rng_bg.uniform(0.3, 0.5) * spot)[..., None]
    mask = np.zeros((height, width), np.float32)
    mask[y0:y1, x0:x1] = cov
    win = bg[y0:y1, x0:x1]
    win += (colour - win) * cov[..., None]
    out = _finish(bg, gen["optical_blur"], gen["noise"], rng_noise)
    finished = {
        name: _quantise(_blurred(_place(np.clip(0.5 - alt * s, 0, 1), mask.shape, y0, x0), gen))
        for name, alt in variants.items()
    }
    return out, _quantise(_blurred(mask, gen)), finished


def _place(window, shape, y0, x0):
    full = np.zeros(shape, np.float32)
    full[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] = window
    return full


def _blurred(mask, gen):
    return cv2.GaussianBlur(mask, (0, 0), gen["optical_blur"]) if gen["optical_blur"] else mask


def _quantise(mask):
    return (np.rint(np.clip(mask, 0, 1) * 255.0) / 255.0).astype(np.float32)


def _finish(img, blur, noise, rng):
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    sigma = np.sqrt(noise**2 + 0.02 * img)  # read noise + shot noise
    img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _material(attrs, rgb, depth_sdf, u, v, s, rng):
    """Colour layer (h, w, 3) float32: base colour shaded by material."""
    depth = np.clip(-depth_sdf, 0.0, None)
    base = np.float32(rgb)
    ext_w, ext_h = EXTENT[attrs["shape"]]
    xr = np.clip((u + ext_w / 2) / ext_w, 0, 1)
    yr = np.clip((v + ext_h / 2) / ext_h, 0, 1)
    rim = 0.84 + 0.16 * np.sqrt(np.clip(depth / (0.035 * s + 1.0), 0, 1))
    if attrs["material"] == "matte":
        shade = (0.86 + 0.14 * (1 - xr)) * rim
        grain = rng.standard_normal(depth.shape, dtype=np.float32)
        grain = 4.0 * grain + 6.0 * cv2.GaussianBlur(grain, (0, 0), 1.2)
        return np.clip(base * shade[..., None] + grain[..., None], 0, 255)
    if attrs["material"] == "glossy":
        shade = (0.62 + 0.38 * np.cos((xr - 0.38) * np.pi * 0.9)) * rim
        spec = 0.9 * np.exp(-(((xr - 0.3) / 0.045) ** 2)) * (0.6 + 0.4 * (1 - yr))
        return np.clip(base * shade[..., None] * (1 - spec[..., None]) + 255.0 * spec[..., None], 0, 255)
    shade = (0.98 + 0.03 * (1 - yr)) * (0.95 + 0.05 * rim)  # smooth: flat colour
    return np.clip(np.broadcast_to(base * shade[..., None], depth.shape + (3,)), 0, 255).astype(np.float32)


def _label(colour, depth_sdf, u, v, s, shape, rng):
    """A printed label with a brand line and small print, on the product's body."""
    bx0, by0, bx1, by1 = LABEL_BOX[shape]
    cols = np.flatnonzero((u[0] >= bx0) & (u[0] <= bx1))
    rows = np.flatnonzero((v[:, 0] >= by0) & (v[:, 0] <= by1))
    if cols.size < 8 or rows.size < 8:
        return
    dark = colour.mean() < 120
    paper = np.float32((245, 240, 226) if dark or rng.random() < 0.5 else (25, 40, 90))
    ink = (20, 20, 24) if paper.mean() > 128 else (240, 240, 240)
    sub = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    lw, lh = cols.size, rows.size
    stencil = np.zeros((lh, lw), np.uint8)
    for text, frac, y in (
        ("LIGHTBOX", 0.8, 0.42),
        (f"No.{int(rng.integers(10, 99))}  250 ml", 0.55, 0.72),
        ("made with care - keep dry", 0.7, 0.9),
    ):
        scale = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
        fs = frac * lw / scale
        thick = max(1, int(round(fs * 2)))
        cv2.putText(stencil, text, (int(0.06 * lw), int(y * lh)), cv2.FONT_HERSHEY_SIMPLEX, fs, 255, thick, cv2.LINE_AA)
    ink_w = stencil.astype(np.float32)[..., None] / 255.0
    inside = (depth_sdf[sub] < -2.0)[..., None]
    patch = colour[sub]
    shade = patch.mean(axis=2, keepdims=True) / max(float(patch.mean()), 1.0)
    label = (paper * (1 - ink_w) + np.float32(ink) * ink_w) * np.clip(shade, 0.8, 1.15)
    colour[sub] = np.where(inside, label, patch)
