"""The production render of a corpus product (``Scene``) and the defects of bench/qc_corpus.py.

``Scene`` mirrors ``tasks/render.py`` (cut_out_product + render_scene) for a studio
template with classical resampling. Render-stage defects work on its layers: the product
colour F and coverage a (``compose_studio(transparent=True)``) and the backdrop with its
drawn shadow B (the compositor's own backdrop and shadow helpers), recomposited as
F a + B (1 - a) like the compositor does, and only where the defect changes something.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property, lru_cache

import cv2
import numpy as np

from imaging import compose as _compose
from imaging.compose import compose_studio, crop_to_product, product_bbox
from imaging.decontaminate import decontaminate_edges
from imaging.encode import encode_image
from imaging.profiles import BUILTIN_PROFILES, encode_for_profile, profile_canvas
from imaging.templates import get_template, load_templates
from imaging.types import Composite, Placement, ShadowSpec
from quality.delta_e import delta_e_2000, srgb_to_lab
from quality.edges import estimate_old_background
from tasks.records import RenderParams

CROP_MARGIN, CROP_SNAP = 8, 32  # tasks/render.py (not imported: it pulls in Prefect)
RENDER = None  # the Render dataclass, set by bench/qc_corpus.py
SAMPLE = 20_000  # pixels used to calibrate a colour change


@lru_cache(maxsize=1)
def _templates():
    return load_templates()


def old_background(rgb: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    med = estimate_old_background(rgb, mask)
    return tuple(int(round(c)) for c in med) if med else (128, 128, 128)


class Scene:
    """One profile's production render of (source photo, mask), plus re-renders of it."""

    def __init__(self, src_rgb, mask, profile: str, template: str):
        self.src_rgb, self.mask = src_rgb, mask
        self.profile = BUILTIN_PROFILES[profile]
        self.template = get_template(template, _templates())
        crop, alpha, to_crop = crop_to_product(src_rgb, mask, CROP_MARGIN, snap_px=CROP_SNAP)
        alpha = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8).astype(np.float32) / 255.0  # cutout PNG
        if RenderParams().decontaminate:
            crop = decontaminate_edges(crop, alpha)
        x0, y0, x1, y1 = product_bbox(alpha)
        self.spec = profile_canvas(
            self.profile, self.template.to_background(), self.template.to_shadow(), product_size=(x1 - x0, y1 - y0)
        )
        self.fill = self.template.fill if self.profile.background == "template" else self.spec.fill
        self._crop = (crop, alpha, to_crop)
        comp = self.compose()
        self.rgb, self.alpha, self.placement, self.meta = comp.rgb, comp.product_alpha, comp.placement, comp.meta
        for a in (self.rgb, self.alpha):
            a.flags.writeable = False
        self.canvas_area = float(self.rgb.shape[0] * self.rgb.shape[1])

    def compose(self, shadow=None, fill=None, **kw) -> Composite:
        crop, alpha, to_crop = self._crop
        kw.setdefault("transparent", self.spec.transparent)
        return compose_studio(
            crop,
            alpha,
            canvas_size=self.spec.size,
            background=self.spec.background,
            shadow=shadow or self.spec.shadow,
            fill=fill or self.fill,
            to_source=to_crop,
            **kw,
        )

    def render(self, rgb, alpha, placement=None, encoded=None):
        placement = placement or self.placement
        if encoded is None:
            encoded = encode_for_profile(self.profile, Composite(rgb, alpha, placement))
        opaque = not self.spec.transparent
        bg, shadow = self.spec.background, self.spec.shadow
        return RENDER(
            rgb,
            alpha,
            placement,
            tuple(bg.colour) if opaque and bg.kind == "solid" else None,
            shadow.style if opaque else None,
            shadow.light_direction_deg if opaque else None,
            opaque and shadow.style in ("soft", "hard"),
            encoded,
            not opaque,
        )

    def render_self(self):
        return self.render(self.rgb, self.alpha)

    def restyle(self, style=None, light_offset=0.0, fill=None):
        """Re-render with another drawn shadow or fill; the Render reports the template's."""
        s = self.spec.shadow
        shadow = ShadowSpec(style or s.style, (s.light_direction_deg + light_offset) % 360.0, s.strength)
        comp = self.compose(shadow, fill)
        return self.render(comp.rgb, comp.product_alpha, comp.placement)

    def jpeg(self, quality: int):
        """The lossless canvas as rendered, shipped as a low-quality JPEG: what production's
        gate sees (the canvas and the encoded bytes)."""
        data = encode_image(self.rgb, fmt="jpeg", quality=int(quality), icc=self.profile.icc)
        return self.render(self.rgb, self.alpha, encoded=data if self.profile.format == "jpeg" else None)

    # -- layers ---------------------------------------------------------------------------
    @cached_property
    def colour(self) -> np.ndarray:
        """F: the product colour on the canvas (uint8), as the compositor resampled it."""
        return self.compose(transparent=True).rgb if not self.spec.transparent else self.rgb

    @cached_property
    def backdrop(self) -> np.ndarray:
        """B: the backdrop with the drawn shadow, without the product (uint8)."""
        h, w = self.rgb.shape[:2]
        canvas = _compose._backdrop(self.spec.background, w, h)
        s = self.spec.shadow
        if not self.spec.transparent and s.style != "none" and s.strength > 0:
            coverage = self.compose(feather_px=0.0, transparent=True).product_alpha
            _compose._apply_shadow(canvas, _compose._shadow_map(coverage, self.meta["product_bbox"], s))
        return canvas

    def over(self, win, sel, colour, alpha=None):
        """The canvas with ``colour`` (float, for the pixels ``sel`` of window ``win``) laid over B."""
        a = (self.alpha[win][sel] if alpha is None else alpha)[:, None]
        out = self.rgb.copy()
        if self.spec.transparent:
            px = colour
        else:
            px = colour * a + self.backdrop[win][sel].astype(np.float32) * (1.0 - a)
        out[win][sel] = np.clip(np.rint(px), 0, 255).astype(np.uint8)
        return out

    def window(self, margin: int):
        ys, xs = np.nonzero(self.alpha > 0)
        h, w = self.alpha.shape
        return np.s_[
            max(ys.min() - margin, 0) : min(ys.max() + 1 + margin, h),
            max(xs.min() - margin, 0) : min(xs.max() + 1 + margin, w),
        ]

    @cached_property
    def mean_lab(self) -> np.ndarray:
        return srgb_to_lab(self.rgb[self.alpha >= 0.98]).mean(axis=0)

    @cached_property
    def signed_distance(self) -> np.ndarray:
        """Distance to the alpha = 0.5 contour in window(8): + inside, - outside (px)."""
        inside = (self.alpha[self.window(8)] >= 0.5).astype(np.uint8)
        d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return np.where(inside > 0, d_in - 0.5, 0.5 - d_out).astype(np.float32)

    @cached_property
    def old_local(self) -> np.ndarray:
        """The old backdrop's colour near each canvas pixel of window(8), from the photo."""
        ys, xs = np.nonzero(self.mask > 0)
        h, w = self.mask.shape
        sy0, sx0 = max(ys.min() - 64, 0), max(xs.min() - 64, 0)
        sub = np.s_[sy0 : min(ys.max() + 65, h), sx0 : min(xs.max() + 65, w)]
        img, bg = self.src_rgb[sub].astype(np.float32), (self.mask[sub] <= 0.02).astype(np.float32)
        local = np.empty_like(img)
        local[...] = old_background(self.src_rgb, self.mask)
        for r in (40, 8):  # wide first, then the near ring overrides where it sees backdrop
            num = cv2.boxFilter(img * bg[..., None], -1, (2 * r + 1,) * 2, normalize=False)
            den = cv2.boxFilter(bg, -1, (2 * r + 1,) * 2, normalize=False)
            ok = den > 0.2 * (2 * r + 1)
            local[ok] = num[ok] / den[ok][:, None]
        win = self.window(8)
        p = self.placement
        m = Placement(p.scale, p.offset_x + p.scale * sx0 - win[1].start, p.offset_y + p.scale * sy0 - win[0].start)
        size = (win[1].stop - win[1].start, win[0].stop - win[0].start)
        return cv2.warpAffine(local, m.matrix(), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------- colour helpers


def _lab(rgb):
    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _rgb(lab):
    return cv2.cvtColor(lab.astype(np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3) * 255.0


def _shift(rgb, direction, k, weight=None):
    """sRGB (N, 3) moved in Lab: L, a or b by ``k`` units, or hue by ``k`` degrees. The
    change is added as a difference so the Lab round trip's own error cancels."""
    lab = _lab(rgb)
    moved = lab.copy()
    if direction == "hue":
        t = math.radians(k)
        moved[:, 1] = lab[:, 1] * math.cos(t) - lab[:, 2] * math.sin(t)
        moved[:, 2] = lab[:, 1] * math.sin(t) + lab[:, 2] * math.cos(t)
    else:
        moved[:, "Lab".index(direction)] += k
    moved[:, 0] = np.clip(moved[:, 0], 0, 100)
    delta = _rgb(moved) - _rgb(lab)
    if weight is not None:
        delta *= weight[:, None]
    return np.clip(np.asarray(rgb, np.float32) + delta, 0, 255)


def _sample(values: np.ndarray) -> np.ndarray:
    """Up to SAMPLE of ``values``, picked at random (a fixed seed): a raster stride could
    line up with the image's columns."""
    if len(values) <= SAMPLE:
        return values
    return values[np.sort(np.random.default_rng(0).choice(len(values), SAMPLE, replace=False))]


def _direction(pixels, choice):
    lab = srgb_to_lab(pixels).mean(axis=0)
    direction = ("L", "a", "b", "hue")[choice]
    if direction == "hue" and math.hypot(lab[1], lab[2]) < 12:
        direction = "b"
    sign = -1.0 if (direction == "L" and lab[0] > 55) or (direction != "L" and choice % 2) else 1.0
    return direction, sign


def _calibrate(measure, target, k0, k_max):
    """k (with k0's sign) where measure(k) ~= target, for a measure that grows with |k|:
    proportional steps kept inside the bracket found so far; the best k measured."""
    sign, k, lo, hi = (1.0 if k0 >= 0 else -1.0), abs(k0), 0.0, k_max
    best = (math.inf, k)
    for _ in range(16):
        got = measure(sign * k)
        best = min(best, (abs(got - target), k))
        if best[0] <= 0.01 * target:
            break
        lo, hi = (k, hi) if got < target else (lo, k)
        step = k * target / got if got > 1e-6 else 4 * k
        k = step if lo < step < hi else (lo + hi) / 2
    return sign * best[1]


def shift_params(main: Scene, target: float, choice: int) -> dict:
    """A global Lab shift whose CIEDE2000 between mean colours is ``target``."""
    sample = _sample(main.colour[main.alpha >= 0.98])
    direction, sign = _direction(sample, choice)
    mean0 = srgb_to_lab(sample).mean(axis=0)

    def measure(k):
        moved = np.rint(_shift(sample, direction, k)).astype(np.uint8)
        return float(delta_e_2000(mean0, srgb_to_lab(moved).mean(axis=0)))

    return {"direction": direction, "k": _calibrate(measure, target, sign * target, 180.0)}


def colour_shift(sc: Scene, params: dict):
    win = sc.window(0)
    sel = sc.alpha[win] > 0
    return sc.over(win, sel, _shift(sc.colour[win][sel], params["direction"], params["k"])), sc.alpha


def mean_delta_e(main: Scene, rgb: np.ndarray) -> float:
    """CIEDE2000 between the mean Lab of the clean and ``rgb``'s pixels where alpha >= 0.98."""
    sel = main.alpha >= 0.98
    return float(delta_e_2000(main.mean_lab, srgb_to_lab(rgb[sel]).mean(axis=0)))


def patch_params(main: Scene, share: float, delta_e: float, choice: int, rng) -> dict:
    """A round patch covering ``share`` of the product pixels, changed by ~``delta_e``."""
    win = main.window(0)
    product = main.alpha[win] >= 0.5
    depth = cv2.distanceTransform(product.astype(np.uint8), cv2.DIST_L2, 5)
    ys, xs = np.nonzero(depth >= 0.5 * depth.max())
    i = int(rng.integers(len(ys)))
    cy, cx = ys[i] + 0.5, xs[i] + 0.5
    py, px = np.nonzero(product)
    dist = np.sort(np.hypot(py + 0.5 - cy, px + 0.5 - cx))
    radius = float(dist[min(len(dist) - 1, int(share * len(dist)))])
    core = (
        product
        & (np.hypot(*np.ogrid[0.5 - cy : product.shape[0] - cy, 0.5 - cx : product.shape[1] - cx]) <= radius - 1.0)
        & (main.alpha[win] >= 0.98)
    )
    sample = _sample(main.colour[win][core]) if core.any() else _sample(main.colour[win][product])
    direction, sign = _direction(sample, choice)
    lab0 = srgb_to_lab(sample)

    def measure(k):
        return float(delta_e_2000(lab0, srgb_to_lab(np.rint(_shift(sample, direction, k)).astype(np.uint8))).mean())

    k = _calibrate(measure, delta_e, sign * delta_e, 180.0)
    src = main.placement.inverse()
    centre = (src.scale * (cx + win[1].start) + src.offset_x, src.scale * (cy + win[0].start) + src.offset_y)
    return {
        "direction": direction,
        "k": k,
        "centre_src": centre,
        "radius_src": radius * src.scale,
        "share": float(np.searchsorted(dist, radius, side="right") / len(dist)),
        "delta_e": measure(k),
    }


def colour_patch(sc: Scene, params: dict):
    p = sc.placement
    cx, cy = p.scale * params["centre_src"][0] + p.offset_x, p.scale * params["centre_src"][1] + p.offset_y
    r = params["radius_src"] * p.scale
    h, w = sc.alpha.shape
    win = np.s_[max(int(cy - r - 3), 0) : min(int(cy + r + 4), h), max(int(cx - r - 3), 0) : min(int(cx + r + 4), w)]
    yy, xx = np.ogrid[win[0].start + 0.5 - cy : win[0].stop - cy, win[1].start + 0.5 - cx : win[1].stop - cx]
    weight = np.clip((r - np.hypot(yy, xx)) / 1.5 + 0.5, 0, 1)
    sel = (weight > 0) & (sc.alpha[win] > 0)
    moved = _shift(sc.colour[win][sel], params["direction"], params["k"], weight[sel])
    return sc.over(win, sel, moved), sc.alpha


# ---------------------------------------------------------------- edge defects


def halo(sc: Scene, contrast: float, width: int):
    """A rim ``width`` px wide just outside the 0.5 contour (full weight for pixel centres
    0.5 .. width - 0.5 px out, linear ramps beyond), ``contrast`` x 100 L* darker on a
    light backdrop, lighter on a dark one."""
    win, sd = sc.window(8), sc.signed_distance
    weight = np.clip(np.minimum(sd + width + 0.5, 0.5 - sd), 0, 1)
    sel = weight > 0
    light = srgb_to_lab(np.array(sc.spec.background.colour, np.uint8))[0] > 50
    lab = _lab(sc.rgb[win][sel])
    moved = lab.copy()
    moved[:, 0] = np.clip(lab[:, 0] + (-1 if light else 1) * 100 * contrast * weight[sel], 0, 100)
    out = sc.rgb.copy()
    out[win][sel] = np.clip(np.rint(sc.rgb[win][sel] + _rgb(moved) - _rgb(lab)), 0, 255).astype(np.uint8)
    return out, sc.alpha


def fringe(sc: Scene, weight_v: float, width: int):
    """The old backdrop's colour bled into the product's edge band ``width`` px deep."""
    win, sd = sc.window(8), sc.signed_distance
    a = sc.alpha[win]
    weight = np.clip(width + 0.5 - sd, 0, 1) * (a > 0)
    sel = weight > 0
    f = sc.colour[win][sel].astype(np.float32)
    f += weight_v * weight[sel][:, None] * (sc.old_local[sel] - f)
    return sc.over(win, sel, f), sc.alpha


def changed_delta_e(main: Scene, rgb: np.ndarray) -> float:
    """Mean CIEDE2000 from the clean canvas over the product pixels (alpha >= 0.5) ``rgb`` changed."""
    sel = (main.alpha >= 0.5) & (rgb != main.rgb).any(axis=2)
    if not sel.any():
        return 0.0
    return float(delta_e_2000(srgb_to_lab(main.rgb[sel]), srgb_to_lab(rgb[sel])).mean())


def blur(sc: Scene, sigma_src: float):
    """Product layer (colour and alpha together) blurred, laid over the same B."""
    sigma = sigma_src * sc.placement.scale
    win = sc.window(int(math.ceil(4 * sigma)) + 2)
    a = sc.alpha[win]
    prem = cv2.GaussianBlur(sc.colour[win].astype(np.float32) * a[..., None], (0, 0), sigma)
    a_b = cv2.GaussianBlur(a, (0, 0), sigma)
    alpha = sc.alpha.copy()
    alpha[win] = a_b
    out = sc.rgb.copy()
    if sc.spec.transparent:
        px = prem / np.maximum(a_b, 1e-6)[..., None]
    else:
        px = prem + sc.backdrop[win].astype(np.float32) * (1.0 - a_b[..., None])
    out[win] = np.clip(np.rint(px), 0, 255).astype(np.uint8)
    return out, alpha


def _ramp(sc: Scene):
    """1 at the product box's upper left (towards the light) .. 0 at its lower right."""
    win = sc.window(0)
    x0, y0, x1, y1 = product_bbox(sc.alpha)
    yy, xx = np.ogrid[win[0].start + 0.5 : win[0].stop, win[1].start + 0.5 : win[1].stop]
    return win, np.clip(((x1 - xx) + (y1 - yy)) / ((x1 - x0) + (y1 - y0)), 0, 1).astype(np.float32)


def clip_params(main: Scene, target: float) -> float:
    """k of the gain 1 + k * ramp**3 (a blown highlight from the upper left, falling off
    fast so a dark product is not brightened all over) that newly clips ``target`` of
    the product pixels."""
    win, ramp = _ramp(main)
    product = main.alpha[win] >= 0.5
    f, r, a, bg, clean = (
        _sample(x[product].astype(np.float32))
        for x in (
            main.colour[win],
            np.broadcast_to(ramp, product.shape) ** 3,
            main.alpha[win],
            main.backdrop[win],
            main.rgb[win],
        )
    )
    before = (clean >= 250).all(axis=1)

    def share(k):  # on the canvas, as clipped_share measures it
        px = np.minimum(f * (1 + k * r)[:, None], 255) * a[:, None] + bg * (1 - a[:, None])
        return float(((np.rint(px) >= 250).all(axis=1) & ~before).mean())

    lo, hi = 0.0, 1.0
    while share(hi) < target and hi < 1024:
        lo, hi = hi, hi * 2
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return hi


def clip_gain(sc: Scene, k: float):
    win, ramp = _ramp(sc)
    sel = sc.alpha[win] > 0
    f = sc.colour[win][sel].astype(np.float32) * (1 + k * np.broadcast_to(ramp, sel.shape)[sel] ** 3)[:, None]
    return sc.over(win, sel, np.minimum(f, 255)), sc.alpha


def clipped_share(main: Scene, rgb: np.ndarray) -> float:
    product = main.alpha >= 0.5
    before, after = (main.rgb[product] >= 250).all(axis=1), (rgb[product] >= 250).all(axis=1)
    return float((after & ~before).mean())


def shift_out(sc: Scene, share: float, side: str):
    """The clean canvas moved so ``share`` of the product box leaves it on ``side``."""
    x0, y0, x1, y1 = product_bbox(sc.alpha)
    h, w = sc.alpha.shape
    dx = {"left": -(x0 + share * (x1 - x0)), "right": (w - x1) + share * (x1 - x0)}.get(side, 0.0)
    dy = {"top": -(y0 + share * (y1 - y0)), "bottom": (h - y1) + share * (y1 - y0)}.get(side, 0.0)
    dx, dy = int(round(dx)), int(round(dy))
    rgb = _compose._backdrop(sc.spec.background, w, h)
    alpha = np.zeros_like(sc.alpha)
    dst = np.s_[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    src = np.s_[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    rgb[dst], alpha[dst] = sc.rgb[src], sc.alpha[src]
    p = sc.placement
    return rgb, alpha, Placement(p.scale, p.offset_x + dx, p.offset_y + dy)


def edge_share(render, source_mask) -> float:
    """Share of the product box (source box through the placement) outside the canvas
    or on its outermost pixel row/column."""
    x0, y0, x1, y1 = product_bbox(source_mask)
    p = render.placement
    box = [p.scale * x0 + p.offset_x, p.scale * y0 + p.offset_y, p.scale * x1 + p.offset_x, p.scale * y1 + p.offset_y]
    h, w = render.alpha.shape
    ix = max(0.0, min(box[2], w - 1) - max(box[0], 1))
    iy = max(0.0, min(box[3], h - 1) - max(box[1], 1))
    return float(1.0 - ix * iy / ((box[2] - box[0]) * (box[3] - box[1])))


# ---------------------------------------------------------------- mask defects


def _quantise(mask):
    return (np.rint(np.clip(mask, 0, 1) * 255.0) / 255.0).astype(np.float32)


def enclosed_holes(mask):
    """Holes of ``mask`` (>= 0.5 is product): background pixels the image's border cannot reach."""
    background = (mask < 0.5).astype(np.uint8)
    _, labels = cv2.connectedComponents(background, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return (labels > 0) & ~np.isin(labels, border)


def fill_hole(mask, target, rng):
    """The hole(s) filled (``target`` "full") or a part of them cut by a straight line,
    so the filled area is ~``target`` x the product area. None when it cannot be."""
    holes = enclosed_holes(mask)
    if not holes.any():
        return None
    area = float(mask.sum())
    ys, xs = np.nonzero(holes)
    win = np.s_[ys.min() - 2 : ys.max() + 3, xs.min() - 2 : xs.max() + 3]
    region = cv2.dilate(holes[win].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    if target == "full":
        cover = region
    else:
        if target >= 0.9 * holes.sum() / area:
            return None
        t = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0 : region.shape[0], 0 : region.shape[1]].astype(np.float32)
        proj = xx * math.cos(t) + yy * math.sin(t)
        lo, hi = float(proj.min()) - 2, float(proj.max()) + 2
        for _ in range(30):
            mid = (lo + hi) / 2
            added = (np.maximum(mask[win], region * np.clip(mid - proj + 0.5, 0, 1)) - mask[win]).sum()
            lo, hi = (mid, hi) if added < target * area else (lo, mid)
        cover = region * np.clip(hi - proj + 0.5, 0, 1)
    out = mask.copy()
    out[win] = np.maximum(mask[win], cover)
    return _quantise(out)


def _components(mask):
    return cv2.connectedComponents((mask >= 0.5).astype(np.uint8), connectivity=8)[0] - 1


def _outline_point(mask, rng, solid_radius=0):
    """A random point of the outer outline; with ``solid_radius``, one where the product
    fills at least a third of the disk of that radius (a body edge, not a thin stem)."""
    binary = (mask >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = max(contours, key=len)[:, 0, :]
    if solid_radius >= 1:
        size = (2 * int(solid_radius) + 1,) * 2
        fill = cv2.boxFilter(binary.astype(np.float32), -1, size)[pts[:, 1], pts[:, 0]]
        if (fill >= 0.34).any():
            pts = pts[fill >= 0.34]
    x, y = pts[int(rng.integers(len(pts)))]
    return float(x) + 0.5, float(y) + 0.5


def _disk(shape, cx, cy, win_r):
    h, w = shape
    win = np.s_[
        max(int(cy - win_r), 0) : min(int(cy + win_r) + 1, h), max(int(cx - win_r), 0) : min(int(cx + win_r) + 1, w)
    ]
    yy, xx = np.ogrid[win[0].start + 0.5 - cy : win[0].stop - cy, win[1].start + 0.5 - cx : win[1].stop - cx]
    return win, np.hypot(yy, xx).astype(np.float32)


def lose_part(product, targets, rng):
    """[(target, damaged mask, detail)]: a chunk bitten from the outline at graded sizes,
    and (one grade fewer) a structural part removed where the product has one."""
    if not targets:
        return []
    mask = product.true_mask
    area, parts, n0 = float(mask.sum()), product.part_masks, _components(mask)
    out = []
    if parts:
        name, alt = next(iter(parts.items()))
        damaged = _quantise(np.minimum(mask, alt))
        out.append(("part", damaged, {"kind": name, "splits": _components(damaged) > n0}))
        targets = targets[:-1]
    cx, cy = _outline_point(mask, rng, solid_radius=math.sqrt(max(targets) * area / math.pi))
    win_r = math.sqrt(max(targets) * area / math.pi) * 4 + 4
    win, dist = _disk(mask.shape, cx, cy, win_r)
    for target in targets:
        lo, hi = 0.0, win_r
        for _ in range(25):
            mid = (lo + hi) / 2
            lost = (mask[win] * np.clip(mid + 0.5 - dist, 0, 1)).sum()
            lo, hi = (mid, hi) if lost < target * area else (lo, mid)
        damaged = mask.copy()
        damaged[win] = mask[win] * (1 - np.clip(hi + 0.5 - dist, 0, 1))
        damaged = _quantise(damaged)
        out.append((target, damaged, {"kind": "chunk", "splits": _components(damaged) > n0}))
    return [(t, m, d) for t, m, d in sorted(out, key=lambda o: float(mask.sum() - o[1].sum()))]


def add_fragments(mask, area_px, rng, blobs=3):
    """Backdrop blobs added to the mask: some attached to the outline, one detached a few
    px away; radii scaled so the added area is ~``area_px`` source px."""
    soft = cv2.GaussianBlur(mask, (0, 0), 3.0)
    gy, gx = np.gradient(soft)
    h, w = mask.shape
    weights = rng.dirichlet(np.ones(blobs) * 3)
    specs = []
    for i in range(blobs):
        x, y = _outline_point(mask, rng)
        n = -np.array([gx[int(y), int(x)], gy[int(y), int(x)]])
        n /= max(np.hypot(*n), 1e-6)
        r = math.sqrt(weights[i] * area_px / math.pi)
        off = 0.3 * r if i < blobs - 1 else 1.3 * r + rng.uniform(2, 6)
        specs.append((x + n[0] * off, y + n[1] * off, r, rng.uniform(0, 2 * np.pi, 2)))

    def draw(scale):
        out = mask.copy()
        for x, y, r, (p1, p2) in specs:
            win, dist = _disk((h, w), x, y, 1.4 * r * scale + 3)
            yy, xx = np.ogrid[win[0].start + 0.5 - y : win[0].stop - y, win[1].start + 0.5 - x : win[1].stop - x]
            phi = np.arctan2(yy, xx)
            edge = r * scale * (1 + 0.2 * np.sin(3 * phi + p1) + 0.1 * np.sin(5 * phi + p2))
            out[win] = np.maximum(out[win], np.clip(edge + 0.5 - dist, 0, 1))
        return out

    lo, hi = 0.1, 4.0
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (draw(mid) - mask).sum() < area_px else (lo, mid)
    return _quantise(draw(hi))


def cut_off(product, target: float, choice: int):
    """The photo cropped so ~``target`` of the true product is outside it."""
    side = ("right", "left", "top", "bottom")[choice]
    mask = product.true_mask
    axis = 0 if side in ("left", "right") else 1
    sums = mask.sum(axis=axis)
    if side in ("right", "bottom"):
        sums = sums[::-1]
    n = int(np.searchsorted(np.cumsum(sums), target * mask.sum())) + 1
    keep = {"right": np.s_[:, :-n], "left": np.s_[:, n:], "bottom": np.s_[:-n, :], "top": np.s_[n:, :]}[side]
    rgb, cut = product.source_rgb[keep], product.true_mask[keep]
    share = 1.0 - float(cut.sum()) / float(mask.sum())
    attrs = {**product.attrs, "cut_side": side}
    return (
        replace(product, name=f"{product.name}-cut", attrs=attrs, source_rgb=rgb, true_mask=cut, part_masks={}),
        share,
        side,
    )
