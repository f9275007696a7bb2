"""``lightbox models check``: is every weight a template needs there and readable?

One line per weight (ok / missing / optional), where to get what is missing; exit 0 when
every required weight is usable, 2 otherwise. Cheap: nothing is loaded (imaging/weights_check.py).
"""

from __future__ import annotations

import sys


def check_models(args) -> int:
    from imaging.templates import TemplateError, get_template, load_templates
    from imaging.weights_check import DIFFUSION_KEYS, check_run_weights

    try:
        template = get_template(args.template, load_templates([args.templates_dir] if args.templates_dir else []))
    except TemplateError as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2
    if args.diffusion_dir is not None and not args.diffusion_dir.is_dir():
        sys.stderr.write(f"lightbox: --diffusion-dir {args.diffusion_dir} is not a folder\n")
        return 2
    root = args.diffusion_dir.resolve() if args.diffusion_dir else None
    diffusion = {key: str(root / key) for key in DIFFUSION_KEYS} if root else {}  # absent: "no folder"
    model_dir = args.model_dir.resolve()
    try:
        checks = check_run_weights(
            model_dir,
            diffusion,
            segmenter=args.segmenter,
            upscaler=args.upscaler,
            controlnet=template.controlnet if template.kind == "lifestyle" else None,
        )
    except KeyError as exc:  # an unknown segmenter
        sys.stderr.write(f"lightbox: unknown segmenter {exc}\n")
        return 2
    sys.stdout.write(f"template {template.name} ({template.kind})\n")
    missing = 0
    for check in checks:
        if check.ok:
            sys.stdout.write(f"ok       {check.name:<28} {check.path}\n")
        elif not check.required:
            sys.stdout.write(f"optional {check.name:<28} {check.problem}; from {check.how_to_get}\n")
        else:
            missing += 1
            sys.stdout.write(f"missing  {check.name:<28} {check.problem}\n         get it: {check.how_to_get}\n")
    if missing:
        sys.stdout.write(f"{missing} weight(s) missing or unreadable\n")
        return 2
    sys.stdout.write("all weights present\n")
    return 0
