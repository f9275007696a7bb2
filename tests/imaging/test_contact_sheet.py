"""imaging.contact_sheet: grid shape, status frames, missing images, ASCII-safe text."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.contact_sheet import MISSING_TILE, STATUS_COLOURS, Tile, ascii_text, contact_sheet

RNG = np.random.default_rng(5)


def _tiles() -> list[Tile]:
    return [
        Tile("SKU-1", RNG.integers(0, 256, (400, 300, 3), dtype=np.uint8), "exported", "green", "ok"),
        Tile(
            "SKU-2 café",
            RNG.integers(0, 256, (100, 500, 4), dtype=np.uint8),
            "rejected",
            "amber",
            "delta_e 4.2 > 3.0 — product colour drifted, and this label goes on and on and on",
        ),
        Tile("SKU-3", None, "failed", "red", "not an image (content is not JPEG, PNG...)"),
        Tile("SKU-4 日本", np.zeros((20, 20, 3), np.uint8), "exported", "green"),
    ]


def _has_colour(sheet: np.ndarray, colour) -> int:
    return int((sheet == np.array(colour, np.uint8)).all(axis=2).sum())


def test_shape_and_dtype():
    sheet = contact_sheet(_tiles(), thumb=128, columns=3)
    cell_w, cell_h = 128 + 12, 128 + 12 + 64
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    assert sheet.shape[:2] == (2 * (cell_h + 12) + 12, 3 * (cell_w + 12) + 12)


def test_default_columns_cap_at_six():
    tiles = [Tile(f"S{i}", None, "failed", "red", "x") for i in range(8)]
    assert contact_sheet(tiles, thumb=64).shape[1] == 6 * (64 + 12 + 12) + 12


def test_status_frames_and_missing_tile_present():
    sheet = contact_sheet(_tiles())
    for status in ("green", "amber", "red"):
        assert _has_colour(sheet, STATUS_COLOURS[status]) > 4 * 256 * 6  # a full frame's worth
    assert _has_colour(sheet, MISSING_TILE) > 200 * 200  # grey tile, with the reason on it


def test_frame_colour_matches_each_tile():
    sheet = contact_sheet(_tiles(), thumb=64, columns=4)
    left_edges = [12 + i * (64 + 12 + 12) for i in range(4)]
    for tile, left in zip(_tiles(), left_edges, strict=True):
        assert sheet[12 + 2, left + 2].tolist() == list(STATUS_COLOURS[tile.status])


def test_ascii_text():
    assert ascii_text("café — 日本 ok") == "cafe ? ?? ok"
    assert ascii_text("tab\there") == "tab?here"


@pytest.mark.parametrize(
    "tiles, message",
    [
        ([], "at least one"),
        ([Tile("A", None, "done", "red")], "state"),  # type: ignore[arg-type]
        ([Tile("A", None, "failed", "blue")], "status"),  # type: ignore[arg-type]
        ([Tile("A", np.zeros((10, 10), np.uint8), "failed", "red")], "image"),
    ],
)
def test_bad_tiles_raise(tiles, message):
    with pytest.raises(ValueError, match=message):
        contact_sheet(tiles)
