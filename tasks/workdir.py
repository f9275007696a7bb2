"""Content-addressed work files under ``<data_dir>/work``. Tasks read and write pixels here
and pass only the paths on. Writes are atomic (tmp + rename), so a crash never leaves a
half-written file where a later run would trust it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

# Bump when an algorithm changes its output for the same inputs: invalidates the task caches.
PIPELINE_VERSION = "2026.11.1"


def digest(*parts: object) -> str:
    """A stable hex key over reprs of the parts (strings, numbers, tuples, pydantic dumps)."""
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for part in parts:
        h.update(b"\x1f" + repr(part).encode("utf-8"))
    return h.hexdigest()


def work_path(data_dir: Path, source_sha256: str, name: str) -> Path:
    folder = Path(data_dir) / "work" / source_sha256[:2] / source_sha256
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: Path, pixels: np.ndarray) -> str:
    """Lossless PNG (RGB, RGBA or single channel uint8); returns the sha256 of the bytes."""
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    data = buf.tobytes()
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_png(path: str | Path, channels: int) -> np.ndarray:
    """Read a work PNG written by ``write_png``: channels 1 (gray), 3 (RGB) or 4 (RGBA)."""
    flag = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR, 4: cv2.IMREAD_UNCHANGED}[channels]
    pixels = cv2.imread(str(path), flag)
    if pixels is None:
        raise FileNotFoundError(
            f"work file missing or unreadable: {path} (delete the data dir's results folder to rebuild caches)"
        )
    if channels == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels
