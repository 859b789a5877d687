#!/usr/bin/env python3
"""Exports RoMa v2 (the RoMaV2 package) to the ONNX signature aquamvs reads.

    img_A, img_B   f32 [1, 3, S, S]   RGB in [0, 1] (RoMa's ImageNet normalisation is inside)
    warp_AB        f32 [1, Hw, Ww, 2] per cell of A, its position in B in [-1, 1] (x, y)
    overlap_AB     f32 [1, Hw, Ww]    sigmoid of RoMa's overlap logit

S is the input size of the last stage: for a two-stage setting ("precise": 800 then 1280)
the graph takes the 1280 image and makes the 800 one itself (bicubic, antialiased, as
RoMaV2.match does from the original). The A→B warp of RoMa's bidirectional mode equals the
one-directional warp, so the export runs one direction only.

Needs: torch, onnx, the RoMaV2 package (pip install PATH/TO/RoMaV2), a checkout of
facebookresearch/dinov3 at the commit RoMaV2 names (its DINOv3 backbone code is loaded
through torch.hub; pass it with --dinov3-repo) and the RoMa v2 weights file (romav2.pt, which
holds the DINOv3 weights as well). This script never downloads.

Example:
    python scripts/export_roma_onnx.py --weights weights/romav2.pt \
        --dinov3-repo src/dinov3 --setting base --output models/roma_v2_640.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_common import ExportError, compare, export, float32_only, no_downloads, seed_everything  # noqa: E402

# RoMaV2's settings: (low-resolution stage, high-resolution stage or None).
SETTINGS = {"turbo": (320, None), "fast": (512, None), "base": (640, None), "precise": (800, 1280)}


class RomaForAquamvs(nn.Module):
    """img_A, img_B at the model's input size → (warp_AB, overlap_AB)."""

    def __init__(self, roma: nn.Module, low: int, high: int | None):
        super().__init__()
        self.roma = roma
        self.low = low
        self.high = high
        # RoMaV2.forward is wrapped in torch.inference_mode, which the tracer cannot see
        # through; its undecorated body is the same computation.
        self._forward = getattr(type(roma).forward, "__wrapped__", type(roma).forward)

    def forward(self, img_A: torch.Tensor, img_B: torch.Tensor):
        if self.high is None:
            preds = self._forward(self.roma, img_A, img_B)
        else:
            size = (self.low, self.low)
            low_A = F.interpolate(img_A, size=size, mode="bicubic", align_corners=False, antialias=True)
            low_B = F.interpolate(img_B, size=size, mode="bicubic", align_corners=False, antialias=True)
            preds = self._forward(self.roma, low_A, low_B, img_A_hr=img_A, img_B_hr=img_B)
        warp = preds["warp_AB"]
        overlap = preds["confidence_AB"][..., 0].sigmoid()
        return warp, overlap


def build(weights: Path | None, dinov3_repo: Path, random: bool) -> nn.Module:
    """The upstream RoMaV2 model in float32 on the CPU, one-directional."""
    try:
        from romav2 import RoMaV2
        from romav2.features import Descriptor
        from romav2.matcher import Matcher
    except ImportError as e:
        raise ExportError(f"the RoMaV2 package is not installed ({e}); pip install PATH/TO/RoMaV2")
    cfg = RoMaV2.Cfg(
        descriptor=Descriptor.Cfg(enable_amp=False),
        matcher=Matcher.Cfg(enable_amp=False),
        compile=False,
    )
    with no_downloads({"romav2.pt": weights}, random, {"facebookresearch/dinov3": dinov3_repo}):
        model = RoMaV2(cfg)
    model = model.float().cpu().eval()
    model.bidirectional = False
    # RoMaV2's rotary position embeddings compute their coordinates in bfloat16 (a `dtype`
    # attribute, not a buffer): ONNX's Range has no bfloat16, and the rest of the export is
    # float32, so they compute in float32 too.
    for m in model.modules():
        if getattr(m, "dtype", None) == torch.bfloat16:
            m.dtype = torch.float32
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, help="RoMa v2 weights (romav2.pt)")
    p.add_argument("--random-weights", action="store_true",
                   help="keep the random initialisation (for checking signatures and costs only)")
    p.add_argument("--dinov3-repo", type=Path, required=True,
                   help="local checkout of facebookresearch/dinov3 (RoMaV2 loads its backbone code through torch.hub)")
    p.add_argument("--setting", choices=sorted(SETTINGS), default="base",
                   help="RoMaV2 resolution setting (default base: 640, one stage; AquaMVS runs precise)")
    p.add_argument("--size", type=int, help="override the first-stage size (multiple of 16)")
    p.add_argument("--hr-size", type=int, help="override the second-stage size (0: none; multiple of 16)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic (GPU); f32 inputs/outputs")
    p.add_argument("--check", action="store_true", help="compare PyTorch and ONNX Runtime on random images")
    p.add_argument("--threads", type=int, help="threads for --check")
    p.add_argument("--output", type=Path, required=True)
    a = p.parse_args(argv)

    if a.weights is None and not a.random_weights:
        raise ExportError("pass --weights PATH/romav2.pt (or --random-weights for a signature check)")
    low, high = SETTINGS[a.setting]
    low = a.size or low
    if a.hr_size is not None:
        high = a.hr_size or None
    for s in (low, high):
        if s is not None and (s <= 0 or s % 16):
            raise ExportError(f"sizes must be positive multiples of 16 (DINOv3 patches), got {s}")
    seed_everything(0)
    torch.set_float32_matmul_precision("highest")
    with float32_only():
        model = RomaForAquamvs(build(a.weights, a.dinov3_repo, a.random_weights), low, high).eval()
        size = high or low
        print(f"RoMa v2: stages {low}" + (f" then {high}" if high else "") + f"; input {size}×{size}")
        images = (torch.rand(1, 3, size, size), torch.rand(1, 3, size, size))
        export(model, images, a.output, ["img_A", "img_B"], ["warp_AB", "overlap_AB"], None, a.opset, a.fp16)
        if a.check:
            rng = np.random.default_rng(1)
            feeds = {n: rng.random((1, 3, size, size), dtype=np.float32) for n in ("img_A", "img_B")}
            compare(model, feeds, a.output, ["warp_AB", "overlap_AB"], a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
