"""quality/enclosure.py on constructed photos with known answers: a right cut's ways out reach
the photo's border; a label's cross its box's outline first."""

import cv2
import numpy as np

from quality.enclosure import enclosed_share
from quality.thresholds import QcThresholds

TH = QcThresholds()
H, W = 300, 400


def _seamless(level: float = 200.0, seed: int = 0) -> np.ndarray:
    """A studio sweep: lighter at the top, with sensor grain."""
    rng = np.random.default_rng(seed)
    back = np.linspace(level + 12, level - 12, H)[:, None, None] + rng.normal(0, 1.5, (H, W, 1))
    return np.repeat(back, 3, axis=2)


def _photo(back: np.ndarray, product: np.ndarray, colour) -> np.ndarray:
    m = product[..., None]
    return np.clip(m * np.asarray(colour, float) + (1 - m) * back, 0, 255).round().astype(np.uint8)


def _mug() -> np.ndarray:
    """A mug body with a ring handle: the bay inside the handle is backdrop, enclosed by the product."""
    m = np.zeros((H, W), np.uint8)
    m[80:240, 120:260] = 1
    cv2.circle(m, (262, 160), 45, 1, 14)
    return m.astype(np.float32)


def test_a_right_cut_with_a_handle_reaches_the_border():
    mug = _mug()
    share = enclosed_share(_photo(_seamless(), mug, (40, 90, 160)), mug)
    assert share is not None and share < 0.05, share


def test_a_hard_shadow_walls_off_only_the_side_it_lies_on():
    """A cast shadow's outer edge is a long edge below the product: the rays that way meet it,
    the others reach the border (true cuts on the corpus: at most 0.35 from a shadow)."""
    mug = _mug()
    back = _seamless()
    shadow = np.zeros((H, W), np.float32)
    cv2.ellipse(shadow, (190, 245), (120, 22), 0, 0, 360, 1.0, -1)
    back *= 1.0 - 0.45 * shadow[..., None]
    share = enclosed_share(_photo(back, mug, (40, 90, 160)), mug)
    assert share is not None and share < TH.cut_enclosed.warn, share


def _pale_sky() -> np.ndarray:
    return _seamless(232.0) * np.array([0.97, 0.985, 1.0])


def _labelled_white_box(sky: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A white box with a navy label on ``sky``: (photo, the box's mask, the label's mask)."""
    box = np.zeros((H, W), np.float32)
    box[60:250, 80:320] = 1.0
    label = np.zeros((H, W), np.float32)
    label[120:190, 140:260] = 1.0
    photo = _photo(sky, box, (238, 236, 230))
    photo[label > 0] = (30, 40, 100)
    return photo, box, label


def test_a_cut_of_a_label_on_a_white_box_over_pale_sky_is_walled_in():
    """Seed 13 box-10: a white box on a pale blue sky, its navy label cut. The box's paper
    white is a step of a few Lab units from the sky: an edge all the same."""
    photo, box, label = _labelled_white_box(_pale_sky())
    share = enclosed_share(photo, label)
    assert share is not None and share >= TH.cut_enclosed.fail, share
    right = enclosed_share(photo, box)
    assert right is not None and right < 0.05, right


def test_a_label_is_walled_in_though_a_cloud_band_and_two_marks_cross_the_border():
    """Seed 89 box-38: a white box on pale sky cut as its label, exported by 2.5.10. A cloud
    band's edge and two dark marks at the photo's foot cross the border strip (busy 0.018
    here, over BUSY), where the check read nothing. Walled in on every side, the label is
    read; a right cut there (0.29 of its ways meet the band) is left unread."""
    sky = _pale_sky()
    sky[268:] -= 10.0  # the lower edge of a cloud band, across the whole photo below the box
    for cx in (110, 290):
        cv2.circle(sky, (cx, 286), 7, (40, 40, 40), -1)  # two dark marks at the photo's foot
    photo, box, label = _labelled_white_box(sky)
    share = enclosed_share(photo, label)
    assert share is not None and share >= TH.cut_enclosed.fail, share
    assert enclosed_share(photo, box) is None


def test_a_ring_cut_right_does_not_count_its_own_hole():
    """The backdrop in a ring's hole is walled in by the ring: it is inside the product, not
    round it."""
    ring = np.zeros((H, W), np.float32)
    cv2.circle(ring, (200, 150), 90, 1.0, 30)
    share = enclosed_share(_photo(_seamless(), ring, (200, 40, 40)), ring)
    assert share is not None and share < 0.05, share
