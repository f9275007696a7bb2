"""The work store: content-addressed work files, on local disk or in S3 (docs/ARCHITECTURE.md,
"Storage"). Tasks read and write bytes through it and pass only references on.

A reference is a string: a local path under ``<data_dir>/work`` (``LocalWorkStore``, the
default), or ``s3://<bucket>/<prefix>/...`` (``S3WorkStore``: a saved ``S3Destination``
block named by ``RunSettings.work_store``), so any node that can reach the bucket can run
a shard. Files are grouped by the source photo's sha256 and never change once written
(their names carry a digest of what made them): a write of a name that exists may be
skipped. Local writes are atomic (tmp + rename), so a crash never leaves a half-written
file where a later run would trust it; an S3 PUT is atomic by itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

# Bump when an algorithm changes its output for the same inputs: invalidates the task caches.
PIPELINE_VERSION = "2026.12.2"  # .2: masks stored as exported (PNG level 6)


def digest(*parts: object) -> str:
    """A stable hex key over reprs of the parts (strings, numbers, tuples, pydantic dumps)."""
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for part in parts:
        h.update(b"\x1f" + repr(part).encode("utf-8"))
    return h.hexdigest()


class WorkStore(Protocol):
    def ref(self, source_sha256: str, name: str) -> str:
        """Where ``name`` of the photo ``source_sha256`` lies (written or not)."""
        ...

    def put(self, ref: str, data: bytes) -> None: ...

    def get(self, ref: str) -> bytes:
        """The bytes; ``FileNotFoundError`` when nothing is there."""
        ...

    def exists(self, ref: str) -> bool: ...


@dataclass(frozen=True)
class LocalWorkStore:
    root: Path  # <data_dir>/work

    def ref(self, source_sha256: str, name: str) -> str:
        return str(self.root / source_sha256[:2] / source_sha256 / name)

    def put(self, ref: str, data: bytes) -> None:
        write_atomic(Path(ref), data)

    def get(self, ref: str) -> bytes:
        return Path(ref).read_bytes()

    def exists(self, ref: str) -> bool:
        return not ref.startswith("s3://") and Path(ref).is_file()


class S3WorkStore:
    """Work files as objects under an ``S3Destination``'s bucket and prefix."""

    def __init__(self, destination) -> None:
        self.destination = destination
        self.base = f"s3://{destination.bucket.bucket_name}/"

    def ref(self, source_sha256: str, name: str) -> str:
        return self.base + self.destination.full_key(f"{source_sha256[:2]}/{source_sha256}/{name}")

    def _key(self, ref: str) -> str:
        if not ref.startswith(self.base):
            raise ValueError(f"{ref!r} is not in this work store ({self.base})")
        return ref[len(self.base) :]

    def put(self, ref: str, data: bytes) -> None:
        self.destination.put_object(self._key(ref), data)

    def get(self, ref: str) -> bytes:
        return self.destination.get_object(self._key(ref))

    def exists(self, ref: str) -> bool:
        return ref.startswith(self.base) and self.destination.has_object(self._key(ref))


def all_exist(store: WorkStore, refs: list[str]) -> list[bool]:
    """``store.exists`` for many references: in 8 threads for a remote store (a HEAD
    each), in order on local disk (a stat each)."""
    if not isinstance(store, S3WorkStore) or len(refs) < 2:
        return [store.exists(ref) for ref in refs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(store.exists, refs))


def work_store(settings) -> WorkStore:
    """The run's store: ``settings.work_store`` (an S3Destination block's slug) or local."""
    return _store(Path(settings.data_dir), settings.work_store)


def store_identity(settings) -> str:
    """What a cached result's references depend on: the bucket block, or this data dir."""
    return settings.work_store or str(Path(settings.data_dir).resolve() / "work")


@lru_cache(maxsize=8)
def _store(data_dir: Path, block: str | None) -> WorkStore:
    if block is None:
        return LocalWorkStore(data_dir / "work")
    from blocks.destinations import S3Destination

    destination = S3Destination.load(block.split("/", 1)[1]) if "/" in block else None
    if not isinstance(destination, S3Destination):
        raise ValueError(f"work store {block!r} is not '<lightbox-s3-destination>/<block-name>'")
    return S3WorkStore(destination)


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


MASK_PNG_COMPRESSION = 6  # masks are stored as export ships them (mask.png): encoded once


def encode_png(pixels: np.ndarray, compression: int = 1) -> bytes:
    """Lossless PNG of RGB, RGBA or single-channel uint8 pixels (fast compression unless
    ``compression`` says otherwise: 0-9, zlib's levels)."""
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError("could not encode a work PNG")
    return buf.tobytes()


def decode_work_image(data: bytes, channels: int, what: str = "work file") -> np.ndarray:
    """Pixels of a work file (PNG, or an encoded export): channels 1 (gray), 3 (RGB) or 4 (RGBA)."""
    flag = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR, 4: cv2.IMREAD_UNCHANGED}[channels]
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if pixels is None:
        raise ValueError(f"{what} is not a readable image")
    if channels == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGBA)
    return pixels
