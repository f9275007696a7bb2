"""The JPEG quality a shipped file was encoded at, read from its luma quantisation table.

Tiles (quality/artefacts.py) are what a coarse quantiser shows on a detailed surface; on a
flat product every block quantises alike and no tile shows, yet at quality 10-20 its colour
and fine detail go (the corpus's flat black mug moved dE00 2.5 of means). The cause is in
the file: the DQT segment holds the step each of the 64 DCT coefficients was quantised
with. The estimate is the IJG quality (libjpeg's ``jpeg_quality_scaling`` of the Annex K
luma table, what OpenCV, Pillow and most tools write) whose table is nearest to the file's,
so a file from another encoder reads as its equivalent IJG quality. Header bytes only: no
decoding. Reference: ITU-T T.81 Annex B.2.4.1 (DQT) and Annex K.1 (the example table).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["jpeg_quality"]

# ITU-T T.81 Table K.1, in zig-zag order (the order DQT stores it in)
_K1_ZIGZAG = (
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
    26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
    56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
    95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
)  # fmt: skip
_HEADER_LIMIT = 1 << 20  # a DQT after this many bytes of markers is not a file we wrote


@lru_cache(maxsize=1)
def _ijg_tables() -> np.ndarray:
    """(100, 64): the IJG luma table at each quality 1..100 (libjpeg jcparam.c)."""
    base = np.array(_K1_ZIGZAG, np.int64)
    out = np.empty((100, 64), np.int64)
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        out[q - 1] = np.clip((base * scale + 50) // 100, 1, 255)
    return out


def _luma_table(data: bytes) -> np.ndarray | None:
    """Table 0 of the first DQT segment that defines it, or None (no DQT before the scan)."""
    if data[:2] != b"\xff\xd8":
        return None
    i, end = 2, min(len(data), _HEADER_LIMIT)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA or length < 2:  # start of scan: no table before it
            return None
        if marker == 0xDB:
            j, stop = i + 4, min(i + 2 + length, len(data))
            while j < stop:
                precision, table = data[j] >> 4, data[j] & 0x0F
                size = 128 if precision else 64
                if j + 1 + size > stop:
                    return None
                raw = data[j + 1 : j + 1 + size]
                values = np.frombuffer(raw, ">u2" if precision else np.uint8).astype(np.int64)
                if table == 0:
                    return values
                j += 1 + size
        i += 2 + length
    return None


def jpeg_quality(data: bytes) -> float | None:
    """The IJG quality (1..100) whose luma table is nearest (sum of absolute step
    differences) to the file's own; None for a file that is not a JPEG or has no luma table.

    >>> import cv2
    >>> img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8)
    >>> [jpeg_quality(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes()) for q in (10, 25, 90)]
    [10.0, 25.0, 90.0]
    >>> jpeg_quality(b"not a jpeg") is None
    True
    """
    table = _luma_table(data)
    if table is None:
        return None
    errors = np.abs(_ijg_tables() - table[None, :]).sum(axis=1)
    return float(np.flatnonzero(errors == errors.min())[-1] + 1)  # ties (q 97-100 clamp alike): the highest
