"""Catalog manifests: a CSV (``sku,image`` + optional ``title,template,priority,
shopify_product_id,image_problem``), a folder
of images (the SKU is the file stem) or a ZIP holding either.

Problems with the manifest as a whole raise ``ManifestError`` (the batch cannot run).
Problems with one row become a ``ManifestEntry`` with ``problem`` set, so that SKU ends
``failed`` with the reason while the rest of the batch goes on: among them an image that
resolves outside the manifest's folder (CSV rows and folder files alike, symlinks
followed) and two SKUs whose folder names would meet (``catalog.paths.folder_key``).
A ZIP is unpacked by ``catalog.unzip`` into a folder of its own (``Manifest.unpacked``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from catalog.paths import UnsafeName, contained_path, folder_key, sku_dirname, validate_sku
from catalog.unzip import ZipRefused, archive_sha256, remove_unpacked, unpack

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
PRIORITIES = ("urgent", "standard", "backfill")
REQUIRED = ("sku", "image")
OPTIONAL = ("title", "template", "priority", "shopify_product_id", "image_problem")
MAX_PROBLEM_CHARS = 300  # an image_problem is a reason, not a document
SHOPIFY_PRODUCT_ID = re.compile(r"(?:gid://shopify/Product/)?([1-9][0-9]{0,19})")
MAX_MANIFEST_BYTES = 20 * 2**20
MAX_ROWS = 100_000


class ManifestError(ValueError):
    """The manifest cannot be read at all; the message is the one-line reason."""


@dataclass(frozen=True)
class ManifestEntry:
    row: int  # 1-based data row (CSV) or position (folder)
    sku: str  # as written (may be unsafe when problem is set)
    image: Path | None
    title: str | None = None
    template: str | None = None
    priority: str = "standard"
    problem: str | None = None  # why this row cannot be processed
    shopify_product_id: str | None = None  # gid://shopify/Product/<n>: where Shopify exports go


@dataclass
class Manifest:
    source: Path
    sha256: str
    entries: list[ManifestEntry] = field(default_factory=list)
    encoding: str = "utf-8"
    ignored: list[str] = field(default_factory=list)  # folder files that are not images
    unpacked: Path | None = None  # the folder a ZIP was unpacked into (catalog.unzip.remove_unpacked)


class _Seen:
    """SKUs met so far, by exact id and by folder name, so a repeat names the first one."""

    def __init__(self) -> None:
        self.skus: dict[str, str] = {}
        self.folders: dict[str, tuple[str, str]] = {}

    def clash(self, sku: str, where: str) -> str | None:
        """Why ``sku`` (at ``where``, e.g. "row 3") cannot be taken, or None (then it is)."""
        if sku in self.skus:
            return f"duplicate SKU {sku!r} (first seen in {self.skus[sku]})"
        key = folder_key(sku)
        if key in self.folders:
            first, other = self.folders[key]
            return (
                f"SKU {sku!r} and SKU {other!r} ({first}) would share the folder "
                f"{sku_dirname(sku)!r}: rename one of them"
            )
        self.skus[sku] = where
        self.folders[key] = (where, sku)
        return None


def load_manifest(path: Path, *, unpack_dir: Path | None = None) -> Manifest:
    """Read a CSV manifest, a folder of images, or a ZIP (unpacked under ``unpack_dir``)."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    if path.is_dir():
        return _from_folder(path)
    if zipfile.is_zipfile(path):
        if unpack_dir is None:
            raise ManifestError("a ZIP manifest needs a folder to unpack into")
        return _from_zip(path, unpack_dir)
    return _from_csv(path)


def _from_csv(path: Path) -> Manifest:
    with open(path, "rb") as fh:  # the size first: a 5 GB "CSV" is refused, not read
        size = fh.seek(0, 2)
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest is {size} bytes (limit {MAX_MANIFEST_BYTES})")
        fh.seek(0)
        data = fh.read(size + 1)  # not MAX + 1: read(n) sets aside n bytes at once
    if len(data) > size:  # it grew while we looked
        raise ManifestError(f"manifest is over {MAX_MANIFEST_BYTES} bytes")
    text, encoding = _decode(data, path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError(f"manifest {path.name} is empty") from None
    except csv.Error as exc:
        raise ManifestError(f"manifest {path.name} is not valid CSV: {exc}") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError(
            f"manifest {path.name} lacks required column(s) {', '.join(missing)} "
            f"(header: {', '.join(columns) or 'none'})"
        )
    manifest = Manifest(source=path, sha256=hashlib.sha256(data).hexdigest(), encoding=encoding)
    seen = _Seen()
    try:
        for number, row in enumerate(reader, start=1):
            if number > MAX_ROWS:
                raise ManifestError(f"manifest has more than {MAX_ROWS} rows")
            if not any(cell.strip() for cell in row):
                continue
            record = dict(zip(columns, row, strict=False))
            manifest.entries.append(_entry(number, record, path.parent, seen))
    except csv.Error as exc:
        raise ManifestError(f"manifest {path.name} is not valid CSV: {exc}") from None
    return manifest


def _entry(number: int, record: dict[str, str], base: Path, seen: _Seen) -> ManifestEntry:
    raw_sku = (record.get("sku") or "").strip()
    title = (record.get("title") or "").strip() or None
    template = (record.get("template") or "").strip() or None
    priority = (record.get("priority") or "").strip().lower() or "standard"
    product = (record.get("shopify_product_id") or "").strip() or None
    # Written by whatever fetched the images (the Shopify refresh): the SKU fails with it.
    image_problem = " ".join((record.get("image_problem") or "").split())[:MAX_PROBLEM_CHARS] or None

    def bad(reason: str, image: Path | None = None) -> ManifestEntry:
        return ManifestEntry(number, raw_sku, image, title, template, "standard", reason)

    try:
        sku = validate_sku(raw_sku)
    except UnsafeName as exc:
        return bad(f"row {number}: {exc}")
    clash = seen.clash(sku, f"row {number}")
    if clash is not None:
        return bad(clash)
    if priority not in PRIORITIES:
        return bad(f"unknown priority {priority!r} (use {', '.join(PRIORITIES)})")
    if product is not None:
        found = SHOPIFY_PRODUCT_ID.fullmatch(product)
        if found is None:
            return bad(f"shopify_product_id {product!r} is neither a number nor gid://shopify/Product/<n>")
        product = f"gid://shopify/Product/{found.group(1)}"
    if image_problem is not None:
        return bad(image_problem)
    try:
        image = contained_path(base, (record.get("image") or "").strip())
    except UnsafeName as exc:
        return bad(str(exc))
    if not image.is_file():
        return bad(f"image file not found: {record.get('image', '').strip()}", image)
    return ManifestEntry(number, sku, image, title, template, priority, shopify_product_id=product)


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name), name
    if b"\x00" in data:
        raise ManifestError(f"manifest {path.name} is binary, not a CSV text file")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are cp1252; report the encoding we used.
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError as exc:
            raise ManifestError(f"manifest {path.name} is neither UTF-8 nor cp1252: {exc}") from None


def _from_folder(folder: Path) -> Manifest:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    digest = hashlib.sha256()
    manifest = Manifest(source=folder, sha256="", ignored=[p.name for p in files if p not in images])
    seen = _Seen()
    for number, image in enumerate(images, start=1):
        digest.update(image.name.encode("utf-8", "surrogateescape") + b"\0")
        stem = image.stem
        try:
            sku = validate_sku(stem)
        except UnsafeName as exc:
            manifest.entries.append(ManifestEntry(number, stem, image, problem=str(exc)))
            continue
        try:  # the CSV rows' rule: a symlink may not lead out of the catalog folder
            contained = contained_path(folder, image.name)
        except UnsafeName as exc:
            manifest.entries.append(ManifestEntry(number, sku, None, problem=str(exc)))
            continue
        clash = seen.clash(sku, f"file {image.name!r}")
        if clash is not None:
            manifest.entries.append(ManifestEntry(number, sku, None, problem=clash))
            continue
        manifest.entries.append(ManifestEntry(number, sku, contained))
    if not manifest.entries:
        raise ManifestError(f"folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    manifest.sha256 = digest.hexdigest()
    return manifest


def _from_zip(path: Path, unpack_dir: Path) -> Manifest:
    digest = archive_sha256(path)
    try:
        target = unpack(path, Path(unpack_dir), digest)
    except ZipRefused as exc:
        raise ManifestError(str(exc)) from None
    except zipfile.BadZipFile as exc:
        raise ManifestError(f"{path.name} is not a readable ZIP: {exc}") from None
    try:
        csvs = sorted(target.rglob("*.csv"))
        manifest = _from_csv(csvs[0]) if csvs else _from_folder(_single_root(target))
    except BaseException:
        remove_unpacked([target])
        raise
    manifest.source, manifest.sha256, manifest.unpacked = path, digest, target
    return manifest


def _single_root(target: Path) -> Path:
    children = [c for c in target.iterdir() if not c.name.startswith(".")]
    return children[0] if len(children) == 1 and children[0].is_dir() else target
