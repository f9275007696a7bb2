"""tasks/segment.py: the segmenter's certainty is read off its own map of the photo, which no
render parameter changes, so an "uncertain cut" costs no retry (quality/defects.py)."""

import hashlib

import cv2
from skimage import data

from quality.defects import plan_retry
from tasks.records import RenderParams, RunSettings, SourceInfo
from tasks.segment import product_mask
from tasks.workdir import work_store


def test_a_re_cut_reads_the_same_certainty_so_an_uncertain_cut_goes_to_review(tmp_path, model_dir):
    rgb = data.coffee()
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    png = png.tobytes()
    sha = hashlib.sha256(png).hexdigest()
    settings = RunSettings(data_dir=tmp_path, database_url="sqlite:///unused.db", model_dir=model_dir)
    store = work_store(settings)
    path = store.ref(sha, "source")
    store.put(path, png)
    h, w = rgb.shape[:2]
    source = SourceInfo(sku_id=1, sha256=sha, path=path, width=w, height=h, format="PNG", size_bytes=len(png))
    first = product_mask(source, settings, RenderParams(), need_px=600)
    # what each re-render plan can change about the cut: a new mask each time, the same map
    for changes in ({"refine_strength": "+1"}, {"fill_holes": False, "refine_strength": "+1"}, {"cut_bias": -1}):
        again = product_mask(source, settings, RenderParams().adjusted(changes), need_px=600)
        assert again.mask_path != first.mask_path and not again.reused  # segmented again
        assert again.confidence == first.confidence
    assert plan_retry(["amazon-main:segment.confidence"]) is None
    assert plan_retry(["amazon-main:edge.halo", "amazon-main:segment.confidence"]) is None
