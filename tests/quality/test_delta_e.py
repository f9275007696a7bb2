"""quality/delta_e.py against published and library reference data."""

import warnings

import numpy as np
import pytest

from quality.delta_e import delta_e_2000, srgb_to_lab, srgb_to_linear

# Sharma, Wu & Dalal (2005), Table 1: the 34 CIEDE2000 test pairs.
# L1, a1, b1, L2, a2, b2, dE00
SHARMA_2005 = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]
SHARMA_TOLERANCE = 1e-4  # the published values have 4 decimals


def test_sharma_2005_pairs_elementwise_and_vectorised():
    table = np.array(SHARMA_2005)
    got = delta_e_2000(table[:, 0:3], table[:, 3:6])
    assert got.shape == (34,)
    np.testing.assert_allclose(got, table[:, 6], atol=SHARMA_TOLERANCE, rtol=0)
    for row in SHARMA_2005[:3]:
        assert abs(float(delta_e_2000(row[0:3], row[3:6])) - row[6]) < SHARMA_TOLERANCE


def test_symmetric_and_zero_for_identical():
    table = np.array(SHARMA_2005)
    np.testing.assert_allclose(delta_e_2000(table[:, 3:6], table[:, 0:3]), table[:, 6], atol=SHARMA_TOLERANCE)
    lab = np.random.default_rng(0).uniform([0, -80, -80], [100, 80, 80], (500, 3))
    assert np.all(delta_e_2000(lab, lab) == 0.0)


def test_broadcasting_over_images():
    img = np.zeros((4, 5, 3))
    img[..., 0] = 50.0
    ref = np.array([50.0, 0.0, 0.0])
    assert delta_e_2000(img, ref).shape == (4, 5)


def test_delta_e_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        delta_e_2000(np.zeros((4, 2)), np.zeros((4, 2)))
    bad = np.array([50.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        delta_e_2000(bad, [50.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def colour_lib():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour-science warns that matplotlib is absent
        import colour
    return colour


@pytest.mark.parametrize(
    "rgb",
    [
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (0.5, 0.5, 0.5),
        (0.2, 0.7, 0.3),
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        (0.01, 0.02, 0.03),
        (0.9, 0.85, 0.1),
    ],
)
def test_srgb_to_lab_matches_colour_science(colour_lib, rgb):
    expected = colour_lib.XYZ_to_Lab(colour_lib.sRGB_to_XYZ(np.array(rgb)))
    np.testing.assert_allclose(srgb_to_lab(np.array(rgb)), expected, atol=1e-9)


def test_srgb_to_lab_uint8_equals_float(colour_lib):
    u8 = np.random.default_rng(1).integers(0, 256, (64, 3)).astype(np.uint8)
    np.testing.assert_allclose(srgb_to_lab(u8), srgb_to_lab(u8 / 255.0), atol=1e-9)
    expected = colour_lib.XYZ_to_Lab(colour_lib.sRGB_to_XYZ(u8 / 255.0))
    np.testing.assert_allclose(srgb_to_lab(u8), expected, atol=1e-9)


def test_srgb_to_lab_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        srgb_to_lab(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        srgb_to_lab(np.array([0.1, np.inf, 0.2]))
    with pytest.raises(ValueError, match="dtype"):
        srgb_to_linear(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        srgb_to_lab(np.array([10.0, 200.0, 255.0]))
