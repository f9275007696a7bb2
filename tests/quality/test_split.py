"""quality/split.py: a thin part cut through leaves the product in pieces whose gap the
photo fills with product; constructed lamps, pairs and fragments with known answers."""

import numpy as np
import pytest

from quality.split import split_share

BACKDROPS = {"white": (235, 235, 235), "grass": None}


def _photo(backdrop, product=(40, 40, 45), seed=0):
    """A lamp (shade, 3 px stem, base) on a plain or textured backdrop; its true mask."""
    rng = np.random.default_rng(seed)
    h, w = 300, 200
    if backdrop is None:  # a green texture, like grass
        base = rng.normal(0, 18, (h, w, 1)) + np.array([90, 160, 70])
        img = np.clip(base, 0, 255)
    else:
        img = np.clip(rng.normal(0, 2, (h, w, 3)) + np.array(backdrop), 0, 255)
    mask = np.zeros((h, w), np.float32)
    mask[30:90, 50:150] = 1  # shade
    mask[90:240, 99:102] = 1  # stem, 3 px
    mask[240:270, 60:140] = 1  # base
    img[mask > 0] = product
    return img.astype(np.uint8), mask


@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_a_stem_cut_through_reads_one(backdrop):
    img, mask = _photo(BACKDROPS[backdrop])
    cut = mask.copy()
    cut[150:170] = 0  # the stem cut through: the mask is in two pieces, the photo is not
    assert split_share(img, cut) > 0.9


@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_the_whole_product_reads_zero(backdrop):
    img, mask = _photo(BACKDROPS[backdrop])
    assert split_share(img, mask) == 0.0


def test_two_items_with_backdrop_between_them_read_zero():
    """A pair (earrings, shoes): two pieces, and the photo shows backdrop between them."""
    img, mask = _photo((235, 235, 235))
    img[90:240, 99:102] = (235, 235, 235)  # no stem in the photo either
    mask[90:240, 99:102] = 0
    assert split_share(img, mask) == 0.0


def test_a_backdrop_fragment_beside_the_product_is_not_a_split():
    """A piece of backdrop stuck to the cut near the product is a fragment (cut.fragments),
    not the product parted: its end does not look like the product."""
    img, mask = _photo(None)
    mask[275:290, 95:110] = 1  # a patch of grass below the base, in the cut
    assert split_share(img, mask) == 0.0


def test_not_measurable_when_the_product_looks_like_its_backdrop():
    img, mask = _photo((42, 42, 47))
    cut = mask.copy()
    cut[150:170] = 0
    assert split_share(img, cut) == 0.0
