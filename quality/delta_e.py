"""sRGB -> CIE Lab (D65) and the CIEDE2000 colour difference, vectorised over ``(..., 3)``.

Both functions are plain numpy so the gate can call them on hundreds of thousands of
pixels without importing colour-science at run time; the tests check them against
colour-science and against the Sharma, Wu & Dalal (2005) reference pairs.
"""

from __future__ import annotations

import numpy as np

from quality._validate import check_finite

__all__ = ["srgb_to_lab", "srgb_to_linear", "delta_e_2000", "D65_WHITE_XYZ", "SRGB_TO_XYZ"]

# IEC 61966-2-1 sRGB -> CIE XYZ matrix (the same 4-digit matrix colour-science uses).
SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
    dtype=np.float64,
)
# CIE D65 reference white from its chromaticity (x, y) = (0.3127, 0.3290), Y = 1.
D65_WHITE_XYZ = np.array([0.3127 / 0.3290, 1.0, (1.0 - 0.3127 - 0.3290) / 0.3290])

_EPSILON = 216.0 / 24389.0  # CIE 15:2004 exact constants for the Lab f(t) junction
_KAPPA = 24389.0 / 27.0
_V8 = np.arange(256, dtype=np.float64) / 255.0
_U8_LINEAR = np.where(_V8 <= 0.04045, _V8 / 12.92, ((_V8 + 0.055) / 1.055) ** 2.4)  # uint8 decode table


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Decode sRGB to linear-light RGB (IEC 61966-2-1 transfer function), float64.

    Input: uint8 in 0..255 or float in [0, 1] (anything else raises: a float image in
    0..255 is a common slip that would otherwise give nonsense), any shape.

    >>> srgb_to_linear(np.array([0, 128, 255], dtype=np.uint8)).round(6).tolist()
    [0.0, 0.215861, 1.0]
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return _U8_LINEAR[rgb]
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"sRGB input must be uint8 or float in [0, 1], got dtype {rgb.dtype}")
    check_finite("rgb", rgb)
    v = rgb.astype(np.float64)
    if v.size and (v.min() < -1e-6 or v.max() > 1.0 + 1e-6):
        raise ValueError(f"float sRGB must lie in [0, 1], got [{v.min():.4g}, {v.max():.4g}] (pass uint8 for 0..255)")
    v = np.clip(v, 0.0, 1.0)  # only rounding noise is clipped
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65, 2 degree observer) of sRGB colours.

    Input: ``(..., 3)`` sRGB, either uint8 0..255 or float in [0, 1] (gamma-encoded).
    Output: float64 ``(..., 3)`` with L* in [0, 100].
    Reference: IEC 61966-2-1 (sRGB), CIE 15:2004 (XYZ -> L*a*b*); matches
    ``colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))`` of colour-science.

    >>> srgb_to_lab(np.array([255, 0, 0], dtype=np.uint8)).round(2).tolist()
    [53.23, 80.11, 67.22]
    >>> srgb_to_lab(np.array([0.5, 0.5, 0.5])).round(3).tolist()
    [53.389, 0.005, 0.002]
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 0 or rgb.shape[-1] != 3:
        raise ValueError(f"sRGB input must have shape (..., 3), got {rgb.shape}")
    lin = srgb_to_linear(rgb)
    r, g, b = lin[..., 0], lin[..., 1], lin[..., 2]
    m = SRGB_TO_XYZ / D65_WHITE_XYZ[:, None]  # explicit sums: (N, 3) @ (3, 3) is slow in numpy
    t = np.stack([m[i, 0] * r + m[i, 1] * g + m[i, 2] * b for i in range(3)], axis=-1)
    f = np.where(t > _EPSILON, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def delta_e_2000(
    lab_1: np.ndarray, lab_2: np.ndarray, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0
) -> np.ndarray:
    """CIEDE2000 colour difference between two arrays of CIE Lab colours.

    Input: broadcastable arrays of shape ``(..., 3)``, CIE L*a*b* (L* in [0, 100]).
    Output: float64 array of shape ``(...)``, >= 0, symmetric in its arguments up to
    floating-point rounding. ``k_l, k_c, k_h`` are the parametric weights (1 for the
    reference conditions). Reference: CIE 142-2001; G. Sharma, W. Wu, E. N. Dalal,
    "The CIEDE2000 color-difference formula: implementation notes, supplementary test
    data, and mathematical observations", Color Res. Appl. 30(1), 2005 (pair 1 below).

    >>> round(float(delta_e_2000([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485])), 4)
    2.0425
    >>> float(delta_e_2000([40.0, 10.0, -5.0], [40.0, 10.0, -5.0]))
    0.0
    """
    lab_1 = np.asarray(lab_1, dtype=np.float64)
    lab_2 = np.asarray(lab_2, dtype=np.float64)
    for name, lab in (("lab_1", lab_1), ("lab_2", lab_2)):
        if lab.ndim == 0 or lab.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (..., 3), got {lab.shape}")
        check_finite(name, lab)
    l1, a1, b1 = lab_1[..., 0], lab_1[..., 1], lab_1[..., 2]
    l2, a2, b2 = lab_2[..., 0], lab_2[..., 1], lab_2[..., 2]

    c_bar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c_bar7 = c_bar**7
    g = 0.5 * (1.0 - np.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where(c1p == 0, 0.0, np.degrees(np.arctan2(b1, a1p)) % 360.0)
    h2p = np.where(c2p == 0, 0.0, np.degrees(np.arctan2(b2, a2p)) % 360.0)

    d_lp = l2 - l1
    d_cp = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    chroma_zero = (c1p * c2p) == 0
    dh = np.where(chroma_zero, 0.0, dh)
    d_hp = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2.0)

    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180.0, 0.5 * h_sum, np.where(h_sum < 360.0, 0.5 * h_sum + 180.0, 0.5 * h_sum - 180.0)
    )
    h_bar = np.where(chroma_zero, h_sum, h_bar)
    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_bar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_bar))
        + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp_bar7 = cp_bar**7
    r_c = 2.0 * np.sqrt(cp_bar7 / (cp_bar7 + 25.0**7))
    s_l = 1.0 + 0.015 * (l_bar - 50.0) ** 2 / np.sqrt(20.0 + (l_bar - 50.0) ** 2)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c

    tl = d_lp / (k_l * s_l)
    tc = d_cp / (k_c * s_c)
    th = d_hp / (k_h * s_h)
    return np.sqrt(np.maximum(tl**2 + tc**2 + th**2 + r_t * tc * th, 0.0))
