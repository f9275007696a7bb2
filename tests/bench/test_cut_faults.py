"""bench/qc_calibration.cut_faults: the label of u2netp's own cuts in the calibration.

A cut that matches the true outline to IoU 0.98 was counted clean; it can still lose a
lamp's stem or fill a ring's hole, defects the gate must catch rather than false rejects.
Constructed masks with known answers."""

import cv2
import numpy as np

from bench.qc_calibration import cut_faults


def _lamp():
    """A 200x200 shade on a 4 px stem on a base: 1.5 % of the area is stem."""
    m = np.zeros((400, 300), bool)
    m[20:220, 50:250] = True  # shade
    m[220:340, 148:152] = True  # stem
    m[340:380, 100:200] = True  # base
    return m


def test_a_cut_a_pixel_off_the_outline_is_clean():
    t = _lamp()
    grown = cv2.dilate(t.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    shrunk = cv2.erode(t.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0) > 0
    assert cut_faults(t, t) == [] and cut_faults(t, grown) == [] and cut_faults(t, shrunk) == []


def test_a_stem_cut_in_two_is_a_fault_at_iou_098():
    t, cut = _lamp(), _lamp()
    cut[270:290] = False  # 20 px of the stem gone: 80 px, 0.16 % of the product
    iou = (t & cut).sum() / (t | cut).sum()
    assert iou > 0.99
    assert cut_faults(t, cut) == ["cut in two"]


def test_a_filled_hole_and_a_lost_part_are_named():
    t = _lamp()
    ring = t.copy()
    ring[80:140, 110:190] = False  # a hole through the shade
    assert cut_faults(ring, t) == ["backdrop added"]  # the cut fills it: 4800 px, 12 % of the product
    stemless = t.copy()
    stemless[224:340, 140:160] = False
    assert cut_faults(t, stemless) == ["lost part", "cut in two"]  # the base lies apart from the shade now
