import numpy as np
def refine_mask(rgb, raw_mask, *, strength=1, matting=False):
    return (raw_mask > 0.5).astype(np.float32)
