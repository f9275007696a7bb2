"""CLIP text-image agreement, used to rank generated scene variants against their prompt.

``ClipScorer.score(images, text)`` returns ``100 * cos(image_embedding, text_embedding)``
per image (the CLIPScore scale of Hessel et al. 2021, without its clipping at 0, so
rankings stay strict). Preprocessing is CLIP's own, done in numpy/PIL: shortest side to
the model's input size (224 for ViT-B/L), bicubic; centre crop; rescale to [0, 1];
normalise with CLIP's mean/std. Weights are local only (see ``imaging.depth.missing_weights``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPModel, CLIPTokenizer

from imaging.depth import check_rgb, missing_weights
from imaging.errors import ModelInputError, WeightsMissing

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def clip_pixels(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32: resize shortest side, centre crop, normalise."""
    check_rgb(rgb)
    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    crop = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    return ((crop - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


class ClipScorer:
    """Scores images against one text with a CLIP model; one instance per worker process."""

    def __init__(
        self,
        model: CLIPModel,
        tokenizer: CLIPTokenizer,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        version: str | None = None,
    ) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.device, self.dtype = torch.device(device), dtype
        self.image_size = int(model.config.vision_config.image_size)
        self.max_length = min(int(tokenizer.model_max_length), int(model.config.text_config.max_position_embeddings))
        self.version = version or str(getattr(model.config, "_name_or_path", "") or "clip")

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        local_files_only: bool = True,
    ) -> ClipScorer:
        """Load CLIPModel + tokenizer from a local folder or an already cached hub id."""
        for filename in ("config.json", "tokenizer_config.json"):
            problem = missing_weights(source, filename, local_files_only=local_files_only)
            if problem:
                raise WeightsMissing(
                    f"CLIP scorer weights missing: {problem}. To fix: save a CLIPModel and its "
                    "tokenizer to that folder (e.g. openai/clip-vit-large-patch14) and set the "
                    "ModelStore `clip` field / --clip flag, or leave CLIP unset to skip ranking."
                )
        try:
            model = CLIPModel.from_pretrained(str(source), local_files_only=local_files_only, use_safetensors=True)
            tokenizer = CLIPTokenizer.from_pretrained(str(source), local_files_only=local_files_only)
        except OSError as exc:
            raise WeightsMissing(f"CLIP weights at {source} could not be read: {exc}") from exc
        return cls(model, tokenizer, device=device, dtype=dtype, version=str(source))

    @torch.inference_mode()
    def embed_text(self, text: str) -> torch.Tensor:
        if not isinstance(text, str) or not text.strip():
            raise ModelInputError("CLIP score text must be a non-empty string")
        tokens = self.tokenizer(
            [text], padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = self.model.get_text_features(input_ids=tokens.input_ids.to(self.device))
        features = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @torch.inference_mode()
    def score(self, images: Sequence[np.ndarray], text: str, *, batch_size: int = 8) -> np.ndarray:
        """(N,) float32 CLIP scores, ``100 * cosine``, of each (H, W, 3) uint8 image vs ``text``."""
        if len(images) == 0:
            raise ModelInputError("CLIP score needs at least one image")
        if batch_size < 1:
            raise ModelInputError(f"batch_size must be >= 1, got {batch_size}")
        text_features = self.embed_text(text)
        scores = []
        for start in range(0, len(images), batch_size):
            batch = np.stack([clip_pixels(im, self.image_size) for im in images[start : start + batch_size]])
            pixels = torch.from_numpy(batch).to(self.device, self.dtype)
            out = self.model.get_image_features(pixel_values=pixels)
            features = out if isinstance(out, torch.Tensor) else out.pooler_output
            features = torch.nn.functional.normalize(features.float(), dim=-1)
            scores.append((100.0 * features @ text_features.T)[:, 0].cpu().numpy())
        result = np.concatenate(scores).astype(np.float32)
        if not np.all(np.isfinite(result)):
            raise FloatingPointError(f"CLIP model {self.version} produced NaN/inf scores (dtype {self.dtype})")
        return result
