"""A batch contact sheet: one framed thumbnail per SKU, coloured by QC status.

Each cell is a ``thumb`` x ``thumb`` thumbnail (aspect kept, on light grey) inside a
frame in the status colour (green = exported/passed, amber = held or retried,
red = rejected/failed), with three lines of text under it: the SKU, the state and a
label (the failing check or reason). Text is drawn with OpenCV's Hershey font, which
only has ASCII: other characters are transliterated where possible (é -> e) and
replaced by ``?`` otherwise; lines that do not fit are cut with ``...``. A SKU without
an image (it failed before one existed) gets a dark grey tile with the reason on it.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (46, 160, 67),
    "amber": (240, 160, 0),
    "red": (210, 40, 40),
}
STATES = ("exported", "rejected", "failed")
SHEET_BACKGROUND = (250, 250, 250)
THUMB_BACKGROUND = (236, 236, 236)
MISSING_TILE = (96, 96, 96)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FRAME = 6  # px of status colour around the thumbnail
_GAP = 12  # px between cells
_LINE = 20  # px per text line


@dataclass(frozen=True)
class Tile:
    """One SKU on the sheet. ``image`` is (H, W, 3) or (H, W, 4) uint8 sRGB, or None."""

    sku: str
    image: np.ndarray | None
    state: Literal["exported", "rejected", "failed"]
    status: Literal["green", "amber", "red"]
    label: str = ""


def contact_sheet(tiles: list[Tile], *, thumb: int = 256, columns: int | None = None) -> np.ndarray:
    """Lay ``tiles`` out in a grid (``columns`` default: up to 6); returns (H, W, 3) uint8 RGB."""
    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    if not 64 <= thumb <= 1024:
        raise ValueError(f"thumb must be in 64..1024 px, got {thumb}")
    for tile in tiles:
        _check_tile(tile)
    columns = columns or min(len(tiles), 6)
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(len(tiles) / columns)
    cell_w, cell_h = thumb + 2 * _FRAME, thumb + 2 * _FRAME + 3 * _LINE + 4
    sheet = np.empty((rows * (cell_h + _GAP) + _GAP, columns * (cell_w + _GAP) + _GAP, 3), np.uint8)
    sheet[:] = SHEET_BACKGROUND
    for i, tile in enumerate(tiles):
        top = _GAP + (i // columns) * (cell_h + _GAP)
        left = _GAP + (i % columns) * (cell_w + _GAP)
        sheet[top : top + thumb + 2 * _FRAME, left : left + cell_w] = STATUS_COLOURS[tile.status]
        inner = sheet[top + _FRAME : top + _FRAME + thumb, left + _FRAME : left + _FRAME + thumb]
        if tile.image is None:
            inner[:] = MISSING_TILE
            _draw_wrapped(inner, "no image: " + (tile.label or tile.state), (255, 255, 255))
        else:
            inner[:] = _thumbnail(tile.image, thumb)
        text_top = top + thumb + 2 * _FRAME
        lines = (tile.sku, tile.state, tile.label)
        for j, line in enumerate(lines):
            _put(
                sheet,
                _fit(ascii_text(line), cell_w),
                (left, text_top + (j + 1) * _LINE - 5),
                (20, 20, 20) if j == 0 else (70, 70, 70),
            )
    return sheet


def ascii_text(text: str) -> str:
    """``text`` reduced to printable ASCII: accents dropped, other characters -> ``?``."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch if " " <= ch <= "~" else "?" for ch in kept)


def _check_tile(tile: Tile) -> None:
    if tile.state not in STATES:
        raise ValueError(f"tile {tile.sku!r}: state must be one of {STATES}, got {tile.state!r}")
    if tile.status not in STATUS_COLOURS:
        raise ValueError(f"tile {tile.sku!r}: status must be one of {tuple(STATUS_COLOURS)}")
    image = tile.image
    if image is not None and not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] in (3, 4)
        and min(image.shape[:2]) > 0
    ):
        raise ValueError(f"tile {tile.sku!r}: image must be (H, W, 3|4) uint8")


def _thumbnail(image: np.ndarray, thumb: int) -> np.ndarray:
    if image.shape[2] == 4:  # flatten straight alpha onto the thumbnail grey
        a = image[..., 3:].astype(np.float32) / 255.0
        image = np.rint(image[..., :3] * a + np.float32(THUMB_BACKGROUND) * (1 - a)).astype(np.uint8)
    height, width = image.shape[:2]
    scale = thumb / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, size, interpolation=interp)
    out = np.empty((thumb, thumb, 3), np.uint8)
    out[:] = THUMB_BACKGROUND
    y, x = (thumb - size[1]) // 2, (thumb - size[0]) // 2
    out[y : y + size[1], x : x + size[0]] = small
    return out


def _fit(text: str, width: int, scale: float = 0.5) -> str:
    if _text_width(text, scale) <= width:
        return text
    while text and _text_width(text + "...", scale) > width:
        text = text[:-1]
    return text + "..."


def _draw_wrapped(tile: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    words, lines, current = ascii_text(text).split(), [], ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if _text_width(candidate, 0.5) <= tile.shape[1] - 16 or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    for i, line in enumerate(lines[: max(1, (tile.shape[0] - 16) // _LINE)]):
        _put(tile, _fit(line, tile.shape[1] - 16), (8, 24 + i * _LINE), colour)


def _put(image: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    cv2.putText(image, text, origin, _FONT, 0.5, colour, 1, cv2.LINE_AA)


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]
