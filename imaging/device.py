"""Which torch device and dtype a worker runs its models on.

CUDA first, then Apple MPS, then CPU; float16 on CUDA (Real-ESRGAN and the diffusion
models are trained to tolerate it and it halves memory), float32 elsewhere (CPU fp16
convolutions are slow or missing, and MPS fp16 has been unreliable for these nets).
"""

from __future__ import annotations

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """The device to run on: ``preferred`` if given ("cuda", "cuda:1", "mps", "cpu"), else the best present.

    ``None`` or "auto" picks cuda > mps > cpu. An explicit device that is not available
    raises ``RuntimeError`` instead of silently running somewhere else.
    """
    if preferred is None or preferred == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preferred)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {preferred!r} asked for, but torch sees no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {preferred!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError(f"device {preferred!r} asked for, but MPS is not available")
    elif device.type != "cpu":
        raise RuntimeError(f"unsupported device {preferred!r} (cuda, mps or cpu)")
    return device


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """float16 on CUDA, float32 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32
