"""GPU throughput of the production models at real size, with RANDOM weights (no hub needed).

Seconds per image, fp16, eager and ``torch.compile``d, for:

* segmentation at 1024 px: UperNet + Swin-L (232 M parameters) from transformers, a
  STAND-IN for BiRefNet (Swin-L backbone, ~220 M), which transformers does not ship;
* SDXL inpainting (9-channel UNet, the real SDXL config) + an SDXL depth ControlNet at
  1024 px, 20 and 30 steps, classifier-free guidance on, full pipeline (text encoders
  CLIP-L + OpenCLIP-bigG, VAE encode/decode, fp16-safe VAE config);
* Real-ESRGAN x4plus (RRDBNet, 23 blocks) from ``imaging.archs``, 512 -> 2048 px.

Random weights cost the same FLOPs as trained ones; only the pictures are noise. The
tokenizer is the tiny test vocabulary (prompts are padded to 77 tokens either way).

    python bench/gpu_models.py [--json] [--stages seg sdxl esrgan] [--steps 20 30] [--no-compile]
    python bench/gpu_models.py --cpu-smoke   # tiny sizes on CPU: proves the script runs

Without CUDA (and without --cpu-smoke) it exits with status 2 and says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import (  # noqa: E402
    AutoencoderKL,
    ControlNetModel,
    EulerDiscreteScheduler,
    StableDiffusionXLControlNetInpaintPipeline,
    UNet2DConditionModel,
)
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    SwinConfig,
    UperNetConfig,
    UperNetForSemanticSegmentation,
)

from imaging.archs import RRDBNet  # noqa: E402
from tests.fixtures import tiny_models  # noqa: E402

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json; in_channels 9 = the inpainting UNet.
SDXL_UNET = dict(
    sample_size=128,
    in_channels=9,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    transformer_layers_per_block=(1, 2, 10),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
# SDXL VAE (madebyollin/sdxl-vae-fp16-fix layout: same shapes, safe to run in fp16).
SDXL_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    sample_size=1024,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    scaling_factor=0.13025,
    force_upcast=False,
)
CLIP_L = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_attention_heads=12,
    num_hidden_layers=12,
    hidden_act="quick_gelu",
    projection_dim=768,
)
CLIP_BIGG = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_attention_heads=20,
    num_hidden_layers=32,
    hidden_act="gelu",
    projection_dim=1280,
)
SWIN_L = dict(embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12)


def controlnet_for(unet_kwargs: dict, conditioning=(16, 32, 96, 256)) -> ControlNetModel:
    """The ControlNet ``ControlNetModel.from_unet`` would build, but on 4-channel latents:
    SDXL ControlNets see the plain latents even when the UNet is the 9-channel inpainter."""
    keys = (
        "layers_per_block",
        "block_out_channels",
        "transformer_layers_per_block",
        "down_block_types",
        "attention_head_dim",
        "cross_attention_dim",
        "use_linear_projection",
        "addition_embed_type",
        "addition_time_embed_dim",
        "projection_class_embeddings_input_dim",
    )
    return ControlNetModel(
        in_channels=4, conditioning_embedding_out_channels=conditioning, **{k: unet_kwargs[k] for k in keys}
    )


def text_encoders() -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    """CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text towers, SDXL's two encoders."""
    vocab, _ = tiny_models.tiny_vocab()
    ids = dict(
        bos_token_id=vocab[tiny_models.BOS],
        eos_token_id=vocab[tiny_models.EOS],
        pad_token_id=vocab[tiny_models.EOS],
        max_position_embeddings=77,
        vocab_size=49408,
    )
    return (
        CLIPTextModel(CLIPTextConfig(**ids, **CLIP_L)),
        CLIPTextModelWithProjection(CLIPTextConfig(**ids, **CLIP_BIGG)),
    )


def build_sdxl(smoke: bool) -> StableDiffusionXLControlNetInpaintPipeline:
    if smoke:
        parts = tiny_models.tiny_inpaint_components()
        net = tiny_models.tiny_controlnet()
    else:
        with torch.device("cpu"):  # numpy reads its tables (see on())
            scheduler = EulerDiscreteScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                steps_offset=1,
                timestep_spacing="leading",
            )
        te1, te2 = text_encoders()
        parts = dict(
            unet=UNet2DConditionModel(**SDXL_UNET),
            vae=AutoencoderKL(**SDXL_VAE),
            text_encoder=te1,
            text_encoder_2=te2,
            tokenizer=tiny_models.tiny_tokenizer(),
            tokenizer_2=tiny_models.tiny_tokenizer(),
            scheduler=scheduler,
        )
        net = controlnet_for(SDXL_UNET)
    pipe = StableDiffusionXLControlNetInpaintPipeline(**parts, controlnet=net, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_segmenter(smoke: bool) -> torch.nn.Module:
    swin = dict(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4) if smoke else SWIN_L
    backbone = SwinConfig(out_features=["stage1", "stage2", "stage3", "stage4"], **swin)
    config = UperNetConfig(
        backbone_config=backbone, num_labels=1, use_auxiliary_head=False, hidden_size=16 if smoke else 512
    )
    return UperNetForSemanticSegmentation(config).eval()


def build_esrgan(smoke: bool) -> torch.nn.Module:
    if smoke:
        return RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    return RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)


def timed(fn, device: torch.device, iters: int) -> tuple[float, float]:
    """(first call seconds, incl. any compile; mean seconds of ``iters`` further calls)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return first, (time.perf_counter() - start) / iters


def compiled(module, compile_mode: str | None, smoke: bool):
    if compile_mode is None:
        return module
    if smoke:  # dynamo tracing without inductor codegen: proves the path, quickly, on CPU
        return torch.compile(module, backend="eager")
    return torch.compile(module, mode=compile_mode)


def on(device: torch.device, build, *args):
    """``build(*args)`` with random weights initialised on ``device`` (minutes faster than
    initialising 3 B parameters on the CPU and copying). Only the building: a pipeline called
    under ``torch.device("cuda")`` puts its scheduler's tables on the GPU, and diffusers reads
    them with numpy (TypeError on the first H200 run)."""
    with torch.device(device):
        return build(*args)


def line(r: dict) -> str:
    extra = f" steps={r['steps']}" if "steps" in r else ""
    return (
        f"{r['stage']:<52} {r['input']:>11} {r['compile']:<28}{extra:>9} "
        f"{r['seconds_per_image']:>9.3f} s/image (first call {r['first_call_s']:.1f} s)"
    )


def run(args) -> list[dict]:
    smoke = args.cpu_smoke
    device = torch.device("cpu" if smoke else "cuda")
    dtype = torch.float32 if smoke else torch.float16
    size, sr_in = (64, 16) if smoke else (1024, 512)
    modes = [None] if args.no_compile else [None, args.compile_mode]
    rows = []

    def record(stage, shape, mode, first, mean, **extra):
        label = "eager" if mode is None else ("dynamo, eager backend" if smoke else mode)
        rows.append(
            dict(
                stage=stage,
                input=shape,
                compile=label,
                dtype=str(dtype)[6:],
                first_call_s=round(first, 3),
                seconds_per_image=round(mean, 4),
                **extra,
            )
        )
        if not args.json:  # as it comes: a later stage's compile may outrun the lease
            print(line(rows[-1]), flush=True)

    if "seg" in args.stages:
        model = on(device, build_segmenter, smoke).to(dtype)
        x = torch.rand(1, 3, size, size, dtype=dtype, device=device)
        for mode in modes:
            net = compiled(model, mode, smoke)
            with torch.inference_mode():
                first, mean = timed(lambda: net(pixel_values=x).logits, device, args.iters)
            record(
                "segmentation (UperNet-SwinL stand-in for BiRefNet)",
                f"{size}x{size}",
                mode,
                first,
                mean,
                params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            )
        del model
    if "esrgan" in args.stages:
        model = on(device, build_esrgan, smoke).eval().to(dtype)
        x = torch.rand(1, 3, sr_in, sr_in, dtype=dtype, device=device)
        for mode in modes:
            net = compiled(model, mode, smoke)
            with torch.inference_mode():
                first, mean = timed(lambda: net(x), device, args.iters)
            record("real-esrgan x4plus (RRDBNet)", f"{sr_in}->{4 * sr_in}", mode, first, mean)
        del model
    if "sdxl" in args.stages:
        pipe = on(device, build_sdxl, smoke).to(device, dtype)
        grey = Image.fromarray(np.full((size, size, 3), 128, np.uint8))
        mask = np.full((size, size), 255, np.uint8)
        mask[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 0  # keep a "product"
        steps_list = [2] if smoke else args.steps
        eager_unet, eager_net = pipe.unet, pipe.controlnet
        for mode in modes:
            pipe.unet = compiled(eager_unet, mode, smoke)
            pipe.controlnet = compiled(eager_net, mode, smoke)
            for steps in steps_list:

                def call():
                    return pipe(
                        "a product on a marble counter",
                        negative_prompt="text",
                        image=grey,
                        mask_image=Image.fromarray(mask),
                        control_image=grey,
                        width=size,
                        height=size,
                        num_inference_steps=steps,
                        strength=0.99,
                        guidance_scale=6.0,
                        output_type="np",
                        generator=torch.Generator("cpu").manual_seed(0),
                    )

                first, mean = timed(call, device, args.iters)
                record("sdxl inpaint + depth controlnet", f"{size}x{size}", mode, first, mean, steps=steps)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document only")
    ap.add_argument("--stages", nargs="+", default=["seg", "sdxl", "esrgan"], choices=["seg", "sdxl", "esrgan"])
    ap.add_argument("--steps", nargs="+", type=int, default=[20, 30])
    ap.add_argument("--iters", type=int, default=2, help="timed calls after the first")
    ap.add_argument("--no-compile", action="store_true")
    # `default`: max-autotune-no-cudagraphs tuned segmentation's convolutions for over 7 minutes
    # on an H200 without finishing (README, "The production models on an H200").
    ap.add_argument("--compile-mode", default="default")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny models on CPU, fp32")
    args = ap.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "bench/gpu_models.py needs a CUDA GPU (none found). Run it on the GPU pool, or "
            "pass --cpu-smoke to check the script with tiny models on CPU.",
            file=sys.stderr,
        )
        return 2
    torch.manual_seed(0)
    env = dict(
        device=torch.cuda.get_device_name(0) if not args.cpu_smoke else platform.processor() or "cpu",
        torch=torch.__version__,
        smoke=args.cpu_smoke,
        random_weights=True,
    )
    if not args.json:
        print(f"# {env}", flush=True)
    rows = run(args)
    if args.json:
        print(json.dumps(dict(env=env, results=rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
