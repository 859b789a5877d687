#!/usr/bin/env python3
"""Exports a LightGlue extractor (SuperPoint or ALIKED) and the LightGlue matcher trained for
it (the cvg/LightGlue package) to the two ONNX files aquamvs reads (the separate form):

  extractor  image [1,1,H,W] f32, grey in [0,1]
             -> keypoints [1,K,2] f32 (x, y; pixel centres of the input image),
                scores [1,K] f32, descriptors [1,K,D] f32 (D = 256 SuperPoint, 128 ALIKED)
  matcher    kpts0 [1,N0,2], kpts1 [1,N1,2] f32, normalised (k - size/2) / (long side/2)
             with k in full-resolution pixels (aquamvs does this, as LightGlue does inside);
             desc0 [1,N0,D], desc1 [1,N1,D] f32
             -> matches0 [M,2] i64 (index in image 0, index in image 1), mscores0 [M] f32

The extractor returns its K best keypoints by score (K = --max-keypoints, sorted, whatever
their score: aquamvs applies sparse_matching.detection_threshold and max_keypoints). ALIKED
gets the grey image as three equal channels, as LightGlue does for a grey input. The matcher
runs all layers (LightGlue's adaptive depth and point pruning decide from the data and do not
export) and keeps every mutual match with a score above --filter-threshold (default 0:
aquamvs applies sparse_matching.filter_threshold).

Needs: torch, torchvision, kornia, onnx, the LightGlue package (pip install PATH/TO/LightGlue)
and the weights files: superpoint_v1.pth or aliked-n16.pth, and superpoint_lightglue.pth or
aliked_lightglue.pth. This script never downloads.

Example:
    python scripts/export_lightglue_onnx.py --extractor superpoint \
        --extractor-weights weights/superpoint_v1.pth \
        --lightglue-weights weights/superpoint_lightglue.pth \
        --height 768 --width 1024 --output-dir models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_common import (  # noqa: E402
    ExportError, batched_max_pool, compare, export, no_downloads, register_deform_conv, seed_everything,
)  # noqa: E402

# Weight URL pieces the upstream classes ask for, per extractor.
WEIGHTS = {
    "superpoint": ("superpoint_v1.pth", "superpoint_lightglue"),
    "aliked": ("aliked-n16.pth", "aliked_lightglue"),
}


class ExtractorForAquamvs(nn.Module):
    """image [1,1,H,W] -> keypoints, scores, descriptors."""

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, image: torch.Tensor):
        out = self.extractor({"image": image})
        return out["keypoints"].float(), out["keypoint_scores"], out["descriptors"]


class MatcherForAquamvs(nn.Module):
    """Normalised keypoints and descriptors of two images -> matches0 [M,2], mscores0 [M]."""

    def __init__(self, lightglue: nn.Module):
        super().__init__()
        self.lightglue = lightglue

    def forward(self, kpts0, kpts1, desc0, desc1):
        import lightglue.lightglue as lg

        # The keypoints arrive normalised; LightGlue's own normalisation (from the image
        # size) is the identity here.
        real = lg.normalize_keypoints
        lg.normalize_keypoints = lambda kpts, size=None: kpts
        try:
            out = self.lightglue(
                {
                    "image0": {"keypoints": kpts0, "descriptors": desc0},
                    "image1": {"keypoints": kpts1, "descriptors": desc1},
                }
            )
        finally:
            lg.normalize_keypoints = real
        return out["matches"][0], out["scores"][0]


def compare_keypoints(extractor, feeds, path):
    """PyTorch and ONNX Runtime keypoints compared as sets: top-k breaks ties of equal scores
    in an arbitrary order (random weights score many pixels alike), so the keypoints at the
    same positions are paired and their scores and descriptors compared."""
    import onnxruntime as ort

    with torch.no_grad():
        k, s, d = (t.numpy()[0] for t in extractor(torch.from_numpy(feeds["image"])))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    k2, s2, d2 = (v[0] for v in session.run(["keypoints", "scores", "descriptors"], feeds))
    if k.shape != k2.shape or d.shape != d2.shape or k2.dtype != np.float32:
        raise ExportError(f"{path}: ONNX Runtime gives keypoints {k2.shape} {k2.dtype}, descriptors "
                          f"{d2.shape}; PyTorch {k.shape}, {d.shape}")
    index = {tuple(p): i for i, p in enumerate(k.tolist())}
    pairs = [(index[tuple(p)], j) for j, p in enumerate(k2.tolist()) if tuple(p) in index]
    i, j = (np.array(x, dtype=int) for x in zip(*pairs)) if pairs else (np.zeros(0, int),) * 2
    print(f"  keypoints: {len(pairs)} of {len(k2)} at the same positions; sorted scores differ by "
          f"at most {np.abs(np.sort(s) - np.sort(s2)).max():.3g}")
    print(f"  on those: scores differ by at most {np.abs(s[i] - s2[j]).max(initial=0):.3g}, "
          f"descriptors by at most {np.abs(d[i] - d2[j]).max(initial=0):.3g}")
    return len(pairs) / max(len(k2), 1)


def build(kind: str, extractor_weights: Path | None, lightglue_weights: Path | None, random: bool,
          max_keypoints: int, filter_threshold: float):
    try:
        from lightglue import ALIKED, LightGlue, SuperPoint
    except ImportError as e:
        raise ExportError(f"the LightGlue package is not installed ({e}); pip install PATH/TO/LightGlue")
    ex_file, lg_file = WEIGHTS[kind]
    with no_downloads({ex_file: extractor_weights, lg_file: lightglue_weights}, random, {}):
        if kind == "superpoint":
            # A threshold below every score (suppressed pixels score 0, borders -1): the K
            # best are always defined, so the graph has one fixed top-k.
            extractor = SuperPoint(max_num_keypoints=max_keypoints, detection_threshold=-2.0)
        else:
            # detection_threshold <= 0 selects ALIKED's fixed top-k mode.
            extractor = ALIKED(max_num_keypoints=max_keypoints, detection_threshold=-1.0)
        matcher = LightGlue(
            features=kind, depth_confidence=-1, width_confidence=-1, flash=False,
            filter_threshold=filter_threshold,
        )
    return ExtractorForAquamvs(extractor.eval()).eval(), MatcherForAquamvs(matcher.eval()).eval()


def main(argv: list[str] | None = None) -> int:
    with batched_max_pool():
        return run(argv)


def run(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extractor", choices=sorted(WEIGHTS), default="superpoint")
    p.add_argument("--extractor-weights", type=Path, help="superpoint_v1.pth or aliked-n16.pth")
    p.add_argument("--lightglue-weights", type=Path, help="superpoint_lightglue.pth or aliked_lightglue.pth")
    p.add_argument("--random-weights", action="store_true",
                   help="keep the random initialisation (for checking signatures and costs only)")
    p.add_argument("--height", type=int, default=768,
                   help="extractor input height (default 768: a 4:3 image with LightGlue's long side 1024)")
    p.add_argument("--width", type=int, default=1024, help="extractor input width (default 1024)")
    p.add_argument("--max-keypoints", type=int, default=2048)
    p.add_argument("--filter-threshold", type=float, default=0.0)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic (GPU); f32 inputs/outputs")
    p.add_argument("--skip-matcher", action="store_true", help="keep an existing KIND_lightglue.onnx (its export is slow and independent of the image size)")
    p.add_argument("--check", action="store_true", help="compare PyTorch and ONNX Runtime on random inputs")
    p.add_argument("--output-dir", type=Path, required=True,
                   help="writes KIND.onnx and KIND_lightglue.onnx there")
    a = p.parse_args(argv)

    if not a.random_weights and (a.extractor_weights is None or a.lightglue_weights is None):
        raise ExportError("pass --extractor-weights and --lightglue-weights (or --random-weights)")
    if a.height % 32 or a.width % 32 or a.height <= 0 or a.width <= 0:
        raise ExportError(f"--height and --width must be positive multiples of 32, got {a.height}×{a.width}")
    seed_everything(0)
    extractor, matcher = build(a.extractor, a.extractor_weights, a.lightglue_weights, a.random_weights,
                               a.max_keypoints, a.filter_threshold)
    ex_path = a.output_dir / f"{a.extractor}.onnx"
    lg_path = a.output_dir / f"{a.extractor}_lightglue.onnx"
    rng = np.random.default_rng(1)

    image = torch.rand(1, 1, a.height, a.width)
    # A fixed input size: the extractors compute pixel scales from the image size in Python
    # (SuperPoint's descriptor sampling, ALIKED's padding), which the trace records as
    # constants, so a graph with dynamic height and width is wrong at any other size (seen:
    # SuperPoint descriptors off by 0.006 at 256×224 after a 512×384 trace). aquamvs resizes
    # every image to the extractor's fixed size.
    if a.extractor == "aliked":
        # ALIKED's deformable convolutions become ONNX DeformConv, new in opset 19.
        register_deform_conv()
    ex_opset = max(a.opset, 19) if a.extractor == "aliked" else a.opset
    export(extractor, (image,), ex_path, ["image"], ["keypoints", "scores", "descriptors"],
           None, ex_opset, a.fp16)

    d = extractor(image)[2].shape[-1]
    n0, n1 = 512, 640
    kp = lambda n: torch.rand(1, n, 2) * 1.6 - 0.8  # noqa: E731
    desc = lambda n: nn.functional.normalize(torch.randn(1, n, d), dim=-1)  # noqa: E731
    dim0 = torch.export.Dim("n0", min=1, max=100_000)
    dim1 = torch.export.Dim("n1", min=1, max=100_000)
    if a.skip_matcher and lg_path.is_file():
        print(f"keeping {lg_path} (the matcher does not depend on the image size)")
    else:
        export(matcher, (kp(n0), kp(n1), desc(n0), desc(n1)), lg_path,
               ["kpts0", "kpts1", "desc0", "desc1"], ["matches0", "mscores0"], None, a.opset,
               a.fp16, dynamic_shapes=({1: dim0}, {1: dim1}, {1: dim0}, {1: dim1}))

    if a.check:
        print(f"extractor on a {a.width}×{a.height} image:")
        feeds = {"image": rng.random((1, 1, a.height, a.width), dtype=np.float32)}
        compare_keypoints(extractor, feeds, ex_path)
        # Matches of real descriptors: the extractor's own output on two related images, and
        # sizes other than those of the trace.
        img = rng.random((1, 1, a.height, a.width), dtype=np.float32)
        with torch.no_grad():
            k0, _, d0 = extractor(torch.from_numpy(img))
            k1, _, d1 = extractor(torch.from_numpy(np.roll(img, 3, axis=3).copy()))
        norm = lambda k: ((k - torch.tensor([a.width / 2, a.height / 2])) / (max(a.width, a.height) / 2))  # noqa: E731
        for m0, m1 in [(len(k0[0]), len(k1[0])), (300, 200)]:
            print(f"matcher on {m0} and {m1} keypoints:")
            feeds = {"kpts0": norm(k0[:, :m0]).numpy(), "kpts1": norm(k1[:, :m1]).numpy(),
                     "desc0": d0[:, :m0].numpy(), "desc1": d1[:, :m1].numpy()}
            compare(matcher, feeds, lg_path, ["matches0", "mscores0"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
