"""Lightbox quality gate: pure numpy/OpenCV metrics, thresholds, and the per-image and
per-batch scoring built on them. No Prefect, no I/O (DESIGN.md, "Quality gate")."""

from quality.artefacts import tile_share
from quality.consistency import DIMENSIONS, BatchConsistency, ImageFeatures, batch_outliers, image_features
from quality.cut import CutQuality, cut_quality
from quality.defects import DEFECTS, Defect, defect_of, describe_failures, plan_retry
from quality.delta_e import delta_e_2000, srgb_to_lab, srgb_to_linear
from quality.edges import EdgeQuality, edge_quality, estimate_old_background
from quality.exposure import Exposure, product_exposure
from quality.fidelity import ColourFidelity, placement_matrix, product_colour_fidelity
from quality.gate import CheckResult, QcEvidence, QcReport, score_batch, score_image, score_sku
from quality.marketplace import Purity, background_purity, icc_description, is_srgb_description, product_fill
from quality.shadow import LightEstimate, ShadowGeometry, estimate_light_direction, shadow_geometry
from quality.thresholds import MARKETPLACE_PROFILES, Limit, MarketplaceRules, QcThresholds

__all__ = [
    "srgb_to_lab",
    "srgb_to_linear",
    "delta_e_2000",
    "product_colour_fidelity",
    "placement_matrix",
    "ColourFidelity",
    "edge_quality",
    "estimate_old_background",
    "EdgeQuality",
    "shadow_geometry",
    "estimate_light_direction",
    "ShadowGeometry",
    "LightEstimate",
    "background_purity",
    "product_fill",
    "icc_description",
    "is_srgb_description",
    "Purity",
    "product_exposure",
    "Exposure",
    "image_features",
    "batch_outliers",
    "ImageFeatures",
    "BatchConsistency",
    "DIMENSIONS",
    "QcThresholds",
    "Limit",
    "MarketplaceRules",
    "MARKETPLACE_PROFILES",
    "QcEvidence",
    "CheckResult",
    "QcReport",
    "score_sku",
    "score_image",
    "score_batch",
    "cut_quality",
    "CutQuality",
    "tile_share",
    "DEFECTS",
    "Defect",
    "defect_of",
    "plan_retry",
    "describe_failures",
]
