"""Unpack a ZIP manifest without trusting it: the archive is hostile input.

Checked before anything is written: the end-of-central-directory record (entry count and
central-directory size, so ``zipfile`` never parses a huge directory), then every member's
name (no absolute paths, no ``.``/``..``/empty parts, no backslashes, no two members that
would land on one path or a file where a folder must be, compared case-insensitively),
its compression method (stored or deflate only: their output is bounded per read) and its
compression ratio. Members are then copied in ``CHUNK`` pieces with running totals, so
memory stays flat whatever the archive claims, and the unpacked size is capped.

Each call unpacks into a fresh folder ``<unpack_dir>/<sha16>-<random>``: two batches of one
archive never share (or delete) each other's files. ``remove_unpacked`` removes such
folders when the batch ends (docs/ARCHITECTURE.md#storage).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from catalog.paths import UnsafeName, contained_path

MAX_ZIP_BYTES = 2 * 2**30  # unpacked, all members together
MAX_ZIP_MEMBERS = 20_000  # entries, folders included
MAX_ZIP_RATIO = 200  # unpacked : packed, per member (photos hardly compress; CSVs ~10x)
RATIO_SLACK = 2**20  # a member this small may compress any amount (a short CSV, a flat PNG)
MAX_CENTRAL_DIRECTORY = 16 * 2**20
CHUNK = 2**20
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"


class ZipRefused(ValueError):
    """The archive cannot be unpacked safely; the message names the member and why."""


def archive_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def unpack(path: Path, unpack_dir: Path, digest: str) -> Path:
    """Unpack ``path`` into a new folder under ``unpack_dir``; return that folder."""
    entries, directory_size = _directory_size(path)
    if entries > MAX_ZIP_MEMBERS:
        raise ZipRefused(f"ZIP holds {entries} entries (limit {MAX_ZIP_MEMBERS})")
    if directory_size > MAX_CENTRAL_DIRECTORY:
        raise ZipRefused(f"ZIP's directory is {directory_size} bytes (limit {MAX_CENTRAL_DIRECTORY})")
    unpack_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{digest[:16]}-", dir=unpack_dir))
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise ZipRefused(f"ZIP holds {len(infos)} entries (limit {MAX_ZIP_MEMBERS})")
            plan = _plan(infos)
            declared = sum(info.file_size for info, _ in plan)
            if declared > MAX_ZIP_BYTES:
                raise ZipRefused(f"ZIP unpacks to {declared} bytes (limit {MAX_ZIP_BYTES})")
            budget = MAX_ZIP_BYTES
            for info, parts in plan:
                budget -= _extract(archive, info, parts, target, budget)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _plan(infos: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Each member with its path parts; refuses names that are unsafe or clash."""
    files: dict[tuple[str, ...], str] = {}
    folders: dict[tuple[str, ...], str] = {}
    plan = []
    for info in infos:
        name = info.filename
        parts = tuple(name.rstrip("/").split("/")) if name.rstrip("/") else ("",)
        if ".." in parts:
            raise ZipRefused(f"ZIP member {name!r} points outside the archive's folder")
        if "\\" in name or "\x00" in name or any(p in ("", ".") for p in parts):
            raise ZipRefused(f"ZIP member {name!r} is not a plain relative path")
        if info.compress_type not in METHODS:
            method = info.compress_type
            raise ZipRefused(f"ZIP member {name!r} uses compression method {method} (only stored or deflate)")
        key = tuple(p.casefold() for p in parts)
        for depth in range(1, len(key)):
            if key[:depth] in files:
                raise ZipRefused(f"ZIP member {name!r} needs a folder where member {files[key[:depth]]!r} is a file")
            folders.setdefault(key[:depth], name)
        if info.is_dir():
            if key in files:
                raise ZipRefused(f"ZIP member {name!r} clashes with member {files[key]!r}")
            folders.setdefault(key, name)
        else:
            clash = files.get(key) or folders.get(key)
            if clash is not None:
                raise ZipRefused(f"ZIP member {name!r} clashes with member {clash!r}")
            files[key] = name
            if info.file_size > max(MAX_ZIP_RATIO * info.compress_size, RATIO_SLACK):
                raise ZipRefused(
                    f"ZIP member {name!r} expands {info.file_size} bytes from {info.compress_size} "
                    f"(ratio limit {MAX_ZIP_RATIO}:1)"
                )
        plan.append((info, parts))
    return plan


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, parts: tuple[str, ...], target: Path, budget: int) -> int:
    """Copy one member in CHUNK pieces; return the bytes written."""
    try:
        destination = contained_path(target, "/".join(parts))
    except UnsafeName as exc:
        raise ZipRefused(f"ZIP member rejected: {exc}") from None
    if info.is_dir():
        destination.mkdir(parents=True, exist_ok=True)
        return 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    limit = min(info.file_size, budget)
    written = 0
    try:
        with archive.open(info) as src, open(destination, "xb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ZipRefused(f"ZIP member {info.filename!r} unpacks past its declared size or the ZIP's limit")
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        raise ZipRefused(f"ZIP member {info.filename!r} cannot be read: {exc}") from None
    return written


def _directory_size(path: Path) -> tuple[int, int]:
    """(entries, central-directory bytes) from the end record, ZIP64 included; (0, 0) when
    there is none (``zipfile`` then says what is wrong)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        start = max(0, size - (2**16 + 22))
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) < at + 22:
            return 0, 0
        entries, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
        if entries != 0xFFFF and directory != 0xFFFFFFFF:
            return entries, directory
        locator = tail[at - 20 : at] if at >= 20 else b""
        if not locator.startswith(_ZIP64_LOCATOR):
            return entries, directory
        (offset,) = struct.unpack("<Q", locator[8:16])
        fh.seek(offset)
        record = fh.read(56)
        if not record.startswith(_ZIP64_EOCD) or len(record) < 56:
            return entries, directory
        return struct.unpack("<QQ", record[32:48])


def unpacked_folders(paths: Iterable[str | Path], unpack_dir: Path) -> set[Path]:
    """The per-archive folders directly under ``unpack_dir`` that hold any of ``paths``."""
    root = Path(unpack_dir).resolve()
    folders = set()
    for path in paths:
        resolved = Path(path).resolve()
        if resolved.is_relative_to(root) and resolved != root:
            folders.add(root / resolved.relative_to(root).parts[0])
    return folders


def remove_unpacked(folders: Iterable[Path]) -> list[Path]:
    """Remove unpacked archive folders; return those that were there."""
    removed = []
    for folder in folders:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed
