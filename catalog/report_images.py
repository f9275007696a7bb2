"""The pictures of the HTML report: which work files show a SKU (from the catalog), and
their small JPEG thumbnails with the mask's outline (pixels in, bytes out; no Prefect).

``image_refs`` reads, per SKU, the stored original, the mask and each profile's encoded
render from the database: the renders of the newest attempt (the ones the report's QC
figures belong to) and the source and mask of the result the SKU entered review with
(``skus.review_item``; a SKU that failed before it had one has no mask). ``sku_thumbs``
reads those references through a reader (``WorkStore.get``) and makes the thumbnails
catalog/report_html.py inlines. docs/ARCHITECTURE.md, "Report".
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from catalog import repository as repo

THUMB_SIDE = 160  # px, longest side: a row of 4 fits a laptop screen, ~4 KB each as JPEG
THUMB_QUALITY = 72
TILE_SIDE = 256  # px: the contact sheet's tile (imaging.contact_sheet's default)
PREVIEW_QUALITY = 85  # the stored preview (``preview_jpeg``), read again for both thumbnails


def thumb_ref(ref: str) -> str:
    """Where the preview of the encoded render at ``ref`` is stored (beside it, in the same
    work-store folder: ``lightbox gc`` removes them together)."""
    return ref + ".thumb.jpg"


def read_preview(read: Callable[[str], bytes], ref: str) -> bytes:
    """The stored preview of the render at ``ref``, or the render itself where it has none
    (made before previews were stored); ``FileNotFoundError`` when neither is there."""
    try:
        return read(thumb_ref(ref))
    except FileNotFoundError:
        return read(ref)


def preview_jpeg(rgb: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """A render's preview, made while its canvas is in memory (``tasks/attempt.py``): fitted
    in TILE_SIDE, transparency drawn on the checkerboard, JPEG. The report reads it instead
    of decoding the export (a 2000 px JPEG or a 2048 px PNG: 80-90 % of a
    40-SKU report's time went to those decodes)."""
    small = _shrink(rgb, TILE_SIDE)
    if alpha is not None:
        a = cv2.resize(
            _shrink(np.asarray(alpha, np.float32), TILE_SIDE), small.shape[1::-1], interpolation=cv2.INTER_AREA
        )
        small = _on_checkerboard(np.dstack([small, np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)]))
    return jpeg(small, PREVIEW_QUALITY)


def _shrink(pixels: np.ndarray, side: int) -> np.ndarray:
    """``_fit``, first by the largest whole factor that keeps ``side`` px: OpenCV's area
    resampling has a fast path for whole factors (2000 px to 250 px RGB: 5 ms, to 256 px:
    16 ms). The canvas's last rows and columns past a multiple of the factor are left out
    (under 0.4 % of its side: backdrop)."""
    h, w = pixels.shape[:2]
    k = max(h, w) // side
    if k >= 2:
        pixels = cv2.resize(pixels[: h - h % k, : w - w % k], (w // k, h // k), interpolation=cv2.INTER_AREA)
    return _fit(pixels, side)


@dataclass(frozen=True)
class SkuImageRefs:
    """Work-store references of one SKU's pictures (None: none was made)."""

    source: str | None = None
    mask: str | None = None
    exports: dict[str, str] = field(default_factory=dict)  # profile -> encoded render
    preview: str | None = None  # the export the contact sheet shows (the report's "preview")


@dataclass(frozen=True)
class SkuThumbs:
    """One SKU's thumbnails: JPEG bytes; ``outline`` an SVG path of the mask's contour in
    the source thumbnail's pixels (``size`` = its width and height)."""

    source: bytes | None = None
    size: tuple[int, int] | None = None
    outline: str = ""
    exports: dict[str, bytes] = field(default_factory=dict)
    tile: np.ndarray | None = field(default=None, compare=False)  # the preview, RGB, fitted in TILE_SIDE


def image_refs(session: Session, batch_id: str, source_ref: Callable[[str], str]) -> dict[str, SkuImageRefs]:
    """Per SKU folder name (the report's ``dir``), where its pictures lie. ``source_ref``
    maps a source's sha256 to its reference (``WorkStore.ref(sha, "source")``), for SKUs
    without a review item."""
    out = {}
    for row in repo.batch_skus(session, batch_id):
        item = row.review_item or {}
        source = (item.get("source") or {}).get("path")
        if source is None and row.source_image is not None:
            source = source_ref(row.source_image.sha256)
        exports = {render.profile: render.uri for render, _ in repo.latest_qc(session, row.id, repo.kept_attempt(row))}
        out[row.dirname] = SkuImageRefs(
            source=source,
            mask=(item.get("outcome") or {}).get("mask_path"),
            exports=exports,
            preview=next(iter(exports.values()), None),  # as catalog.report.build_report's
        )
    return out


def sku_thumbs(refs: SkuImageRefs, read: Callable[[str], bytes], side: int = THUMB_SIDE) -> SkuThumbs:
    """The thumbnails of one SKU, each stored picture read and decoded once (the preview's
    contact-sheet tile and its thumbnail come from one decode). A file that is gone
    (``lightbox gc``) or unreadable is left out, and the report shows its place empty."""
    source = _pixels(refs.source, read, side)
    outline = ""
    if source is not None and refs.mask:
        mask = _pixels(refs.mask, read, 2 * side, gray=True)
        outline = mask_outline(mask, (source.shape[1], source.shape[0])) if mask is not None else ""
    exports, tile = {}, None
    for profile, ref in refs.exports.items():
        pixels = _pixels(ref, read, max(side, TILE_SIDE) if ref == refs.preview else side, preview=True)
        if pixels is None:
            continue
        if ref == refs.preview:
            tile, pixels = pixels, _fit(pixels, side)
        exports[profile] = jpeg(pixels)
    return SkuThumbs(
        source=jpeg(source) if source is not None else None,
        size=(source.shape[1], source.shape[0]) if source is not None else None,
        outline=outline,
        exports=exports,
        tile=tile,
    )


def batch_thumbs(
    refs: Mapping[str, SkuImageRefs], read: Callable[[str], bytes], workers: int = 8
) -> dict[str, SkuThumbs]:
    """``sku_thumbs`` for every SKU, decoding in threads (OpenCV releases the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = pool.map(lambda key: (key, sku_thumbs(refs[key], read)), list(refs))
        return dict(done)


def mask_outline(mask: np.ndarray, size: tuple[int, int]) -> str:
    """The contour of a product mask (uint8, any size; >= 128 is product), holes included,
    as an SVG path in a ``size`` = (width, height) pixel frame: "M x y L x y ... Z"."""
    h, w = mask.shape[:2]
    contours, _ = cv2.findContours((mask >= 128).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    sx, sy = size[0] / w, size[1] / h
    parts = []
    for contour in contours:
        if cv2.contourArea(contour) * sx * sy < 4:  # specks smaller than 2x2 thumbnail px
            continue
        points = cv2.approxPolyDP(contour, 0.5 / max(sx, sy), True).reshape(-1, 2)
        if len(points) < 3:
            continue
        xy = [f"{(x + 0.5) * sx:.1f} {(y + 0.5) * sy:.1f}" for x, y in points]
        parts.append("M" + " L".join(xy) + " Z")
    return " ".join(parts)


def jpeg(rgb: np.ndarray, quality: int = THUMB_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return buf.tobytes()


def _pixels(
    ref: str | None, read: Callable[[str], bytes], side: int, gray: bool = False, preview: bool = False
) -> np.ndarray | None:
    """A stored image fitted into ``side`` x ``side``: RGB (transparency shown on a
    checkerboard), or one channel for a mask; None when gone or unreadable. ``preview``: an
    export, read from its stored preview when there is one (``thumb_ref``; renders made
    before previews were stored have none)."""
    if not ref:
        return None
    try:
        data = read_preview(read, ref) if preview else read(ref)
    except FileNotFoundError:
        return None
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_UNCHANGED
    if data[:3] == b"\xff\xd8\xff" and not gray:  # JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 for free
        flag = _REDUCED.get(_jpeg_reduction(data, side), cv2.IMREAD_COLOR)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if pixels is None:
        return None
    if pixels.dtype != np.uint8:  # 16-bit PNG
        pixels = (pixels / 257).astype(np.uint8)
    pixels = _fit(pixels, side)
    if gray:
        return pixels
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 4:
        return _on_checkerboard(cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA))
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _fit(pixels: np.ndarray, side: int) -> np.ndarray:
    """``pixels`` shrunk (INTER_AREA) to fit in ``side`` x ``side``; never enlarged."""
    scale = min(1.0, side / max(pixels.shape[:2]))
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _jpeg_reduction(data: bytes, side: int) -> int:
    """The largest of 8, 4, 2 that still leaves ``side`` px on the longest side (1: none)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            longest = max(img.size)
    except (OSError, ValueError):
        return 1
    return next((r for r in (8, 4, 2) if longest // r >= side), 1)


def _on_checkerboard(rgba: np.ndarray, square: int = 8) -> np.ndarray:
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    board = np.where(((yy // square + xx // square) % 2 == 0)[..., None], 255.0, 226.0)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + board * (1 - alpha) + 0.5).astype(np.uint8)
