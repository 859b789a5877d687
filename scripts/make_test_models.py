#!/usr/bin/env python3
"""Builds the small ONNX stand-ins of the learned matchers used by the tests.

Real SuperPoint / LightGlue / RoMa v2 weights cannot be downloaded in CI, so the tests run
the whole learned-matcher path (loading, preprocessing, tensor layout, post-processing,
coordinate conversion, triangulation, depth maps) on models that have exactly the supported
input/output signatures (docs/learned-matchers.md) and whose outputs are known:

- superpoint.onnx: `image` f32 [1,1,H,W] -> `keypoints` i64 [1,N,2] (x, y), `scores` f32
  [1,N], `descriptors` f32 [1,N,256]. Keypoints are the local maxima (9x9, ties broken
  towards larger x + 16y) brighter than 0.2, at most 64, brightest first; the descriptor is a soft one-hot code of the peak value,
  so a dot of a given brightness has the same descriptor in every view (the `Dots` texture
  of `aquamvs::synth` paints dots of distinct brightness).
- lightglue.onnx: `kpts0`, `kpts1` f32 [1,N,2] (normalised by the long image edge), `desc0`,
  `desc1` f32 [1,N,256] -> `matches0` i64 [M,2], `mscores0` f32 [M]: mutual nearest
  neighbours by descriptor similarity; the score is zeroed when a keypoint lies outside
  [-1, 1] (so keypoints that are not normalised give no matches).
- superpoint_fixed.onnx: the same with a fixed input [1,1,352,480] and f32 keypoints, the
  form scripts/export_lightglue_onnx.py writes.
- superpoint_lightglue.onnx: the end-to-end form, `images` f32 [2,1,H,W] -> `keypoints` i64
  [2,N,2], `matches` i64 [M,3] (batch, index0, index1), `mscores` f32 [M]; the same extractor
  (always 16 keypoints per image, the unused ones with score 0 and a zero descriptor) and the
  same matcher.
- roma.onnx: `img_A`, `img_B` f32 [B,3,64,64] RGB in [0,1] -> `warp_AB` f32 [B,64,64,2]
  (normalised [-1,1] coordinates in B, x then y, at warp-cell centres) and `overlap_AB` f32
  [B,64,64] in [0,1]. Each cell of A is matched to the soft-argmin of the colour distance
  over the cells of B, so on the `Coordinates` texture (red and green encode world x and y)
  the warp is the true correspondence of the scene.

Usage: python3 scripts/make_test_models.py [OUT_DIR]   (default tests/data/onnx)
Needs the `onnx` and `numpy` packages (pip install onnx numpy).
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
DESC = 256
MAX_KP = 64
# Input size of superpoint_fixed.onnx (not the 4:3 of the test scenes: each axis scales alone).
FIXED_H, FIXED_W = 352, 480
E2E_KP = 16
ROMA_S = 64


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name))


def extractor_nodes(img, k, compress, prefix):
    """Nodes from `img` [B,1,H,W] to `{prefix}kp` i64 [B,K,2], `{prefix}vals` [B,K] and
    `{prefix}desc` [B,K,256] (B = 1 when `compress`)."""
    p = prefix
    n = []
    # Ties (a dot centred between pixels) are broken by a tiny tilt, eps*(x + 16y), so that
    # each dot gives one maximum; the tilt only decides which pixel, not the score.
    n.append(helper.make_node("Shape", [img], [p + "shape0"]))
    n.append(const(p + "i2s", np.array(2, np.int64)))
    n.append(const(p + "i3s", np.array(3, np.int64)))
    n.append(helper.make_node("Gather", [p + "shape0", p + "i2s"], [p + "h_s"], axis=0))
    n.append(helper.make_node("Gather", [p + "shape0", p + "i3s"], [p + "w_s"], axis=0))
    n.append(const(p + "r0", np.array(0, np.int64)))
    n.append(const(p + "r1", np.array(1, np.int64)))
    n.append(helper.make_node("Range", [p + "r0", p + "w_s", p + "r1"], [p + "xs_i"]))
    n.append(helper.make_node("Range", [p + "r0", p + "h_s", p + "r1"], [p + "ys_i"]))
    n.append(helper.make_node("Cast", [p + "xs_i"], [p + "xs"], to=TensorProto.FLOAT))
    n.append(helper.make_node("Cast", [p + "ys_i"], [p + "ys"], to=TensorProto.FLOAT))
    n.append(const(p + "sixteen", np.array(16.0, np.float32)))
    n.append(helper.make_node("Mul", [p + "ys", p + "sixteen"], [p + "ys16"]))
    n.append(const(p + "m1a", np.array([-1], np.int64)))
    n.append(helper.make_node("Unsqueeze", [p + "ys16", p + "m1a"], [p + "ycol"]))
    n.append(helper.make_node("Add", [p + "ycol", p + "xs"], [p + "ramp"]))
    n.append(const(p + "eps", np.array(2.5e-7, np.float32)))
    n.append(helper.make_node("Mul", [p + "ramp", p + "eps"], [p + "tilt"]))
    n.append(helper.make_node("Add", [img, p + "tilt"], [p + "tilted"]))
    n.append(helper.make_node("MaxPool", [p + "tilted"], [p + "pool"], kernel_shape=[9, 9], pads=[4, 4, 4, 4], strides=[1, 1]))
    n.append(helper.make_node("Equal", [p + "tilted", p + "pool"], [p + "is_max"]))
    n.append(const(p + "thr", np.array(0.2, np.float32)))
    n.append(helper.make_node("Greater", [img, p + "thr"], [p + "bright"]))
    n.append(helper.make_node("And", [p + "is_max", p + "bright"], [p + "peak"]))
    n.append(helper.make_node("Cast", [p + "peak"], [p + "peakf"], to=TensorProto.FLOAT))
    n.append(helper.make_node("Mul", [img, p + "peakf"], [p + "s"]))
    n.append(helper.make_node("Shape", [img], [p + "shape"]))
    n.append(const(p + "i0", np.array([0], np.int64)))
    n.append(const(p + "i3", np.array([3], np.int64)))
    n.append(helper.make_node("Gather", [p + "shape", p + "i0"], [p + "b"], axis=0))
    n.append(helper.make_node("Gather", [p + "shape", p + "i3"], [p + "w"], axis=0))
    n.append(const(p + "m1", np.array([-1], np.int64)))
    n.append(helper.make_node("Concat", [p + "b", p + "m1"], [p + "flat_shape"], axis=0))
    n.append(helper.make_node("Reshape", [p + "s", p + "flat_shape"], [p + "flat"]))
    n.append(const(p + "k", np.array([k], np.int64)))
    n.append(helper.make_node("TopK", [p + "flat", p + "k"], [p + "vals0", p + "idx0"], axis=1))
    if compress:
        n.append(const(p + "zero", np.array(0.0, np.float32)))
        n.append(helper.make_node("Greater", [p + "vals0", p + "zero"], [p + "keep2"]))
        n.append(helper.make_node("Reshape", [p + "keep2", p + "m1"], [p + "keep"]))
        n.append(helper.make_node("Compress", [p + "vals0", p + "keep"], [p + "vals"], axis=1))
        n.append(helper.make_node("Compress", [p + "idx0", p + "keep"], [p + "idx"], axis=1))
    else:
        n.append(helper.make_node("Identity", [p + "vals0"], [p + "vals"]))
        n.append(helper.make_node("Identity", [p + "idx0"], [p + "idx"]))
    n.append(helper.make_node("Mod", [p + "idx", p + "w"], [p + "x"]))
    n.append(helper.make_node("Div", [p + "idx", p + "w"], [p + "y"]))
    n.append(helper.make_node("Unsqueeze", [p + "x", p + "m1"], [p + "x1"]))
    n.append(helper.make_node("Unsqueeze", [p + "y", p + "m1"], [p + "y1"]))
    n.append(helper.make_node("Concat", [p + "x1", p + "y1"], [p + "kp"], axis=-1))
    # Descriptor: exp(-(v - c)^2 / (2 sigma^2)) over 256 centres, L2-normalised, times
    # (v > 0) so that padding keypoints have a zero descriptor.
    centres = np.linspace(0.0, 1.0, DESC, dtype=np.float32)
    n.append(const(p + "centres", centres))
    n.append(helper.make_node("Unsqueeze", [p + "vals", p + "m1"], [p + "v1"]))
    n.append(helper.make_node("Sub", [p + "v1", p + "centres"], [p + "d"]))
    n.append(helper.make_node("Mul", [p + "d", p + "d"], [p + "d2"]))
    n.append(const(p + "neg_inv", np.array(-1.0 / (2 * 0.02**2), np.float32)))
    n.append(helper.make_node("Mul", [p + "d2", p + "neg_inv"], [p + "arg"]))
    n.append(helper.make_node("Exp", [p + "arg"], [p + "e"]))
    n.append(helper.make_node("Mul", [p + "e", p + "e"], [p + "e2"]))
    n.append(helper.make_node("ReduceSum", [p + "e2", p + "m1"], [p + "ss"], keepdims=1))
    n.append(helper.make_node("Sqrt", [p + "ss"], [p + "norm"]))
    n.append(helper.make_node("Div", [p + "e", p + "norm"], [p + "unit"]))
    n.append(const(p + "zero2", np.array(0.0, np.float32)))
    n.append(helper.make_node("Greater", [p + "v1", p + "zero2"], [p + "live"]))
    n.append(helper.make_node("Cast", [p + "live"], [p + "livef"], to=TensorProto.FLOAT))
    n.append(helper.make_node("Mul", [p + "unit", p + "livef"], [p + "desc"]))
    return n


def matcher_nodes(d0, d1, k0, k1, prefix):
    """Mutual nearest neighbours of `d0` [N0,256] and `d1` [N1,256]; `k0`, `k1` [N,2]
    normalised keypoints. Outputs `{prefix}i` i64 [M], `{prefix}j` i64 [M], `{prefix}s` [M]."""
    p = prefix
    n = []
    n.append(helper.make_node("Transpose", [d1], [p + "d1t"], perm=[1, 0]))
    n.append(helper.make_node("MatMul", [d0, p + "d1t"], [p + "sim"]))
    n.append(helper.make_node("ArgMax", [p + "sim"], [p + "j_all"], axis=1, keepdims=0))
    n.append(helper.make_node("ReduceMax", [p + "sim"], [p + "s_all"], axes=[1], keepdims=0))
    n.append(helper.make_node("ArgMax", [p + "sim"], [p + "i_back"], axis=0, keepdims=0))
    n.append(helper.make_node("Gather", [p + "i_back", p + "j_all"], [p + "i_round"], axis=0))
    n.append(helper.make_node("Shape", [p + "j_all"], [p + "n0"]))
    n.append(const(p + "zero_i", np.array(0, np.int64)))
    n.append(const(p + "one_i", np.array(1, np.int64)))
    n.append(helper.make_node("Squeeze", [p + "n0"], [p + "n0s"]))
    n.append(helper.make_node("Range", [p + "zero_i", p + "n0s", p + "one_i"], [p + "i_all"]))
    n.append(helper.make_node("Equal", [p + "i_round", p + "i_all"], [p + "mutual"]))
    # Keypoints must be normalised: a keypoint outside [-1, 1] zeroes its matches.
    for side, k in (("0", k0), ("1", k1)):
        n.append(helper.make_node("Abs", [k], [p + "abs" + side]))
        n.append(helper.make_node("ReduceMax", [p + "abs" + side], [p + "kmax" + side], keepdims=0))
    n.append(helper.make_node("Max", [p + "kmax0", p + "kmax1"], [p + "kmax"]))
    n.append(const(p + "one_f", np.array(1.0, np.float32)))
    n.append(helper.make_node("LessOrEqual", [p + "kmax", p + "one_f"], [p + "normed"]))
    n.append(helper.make_node("Cast", [p + "normed"], [p + "normedf"], to=TensorProto.FLOAT))
    n.append(helper.make_node("Mul", [p + "s_all", p + "normedf"], [p + "s_scaled"]))
    n.append(const(p + "min_s", np.array(0.05, np.float32)))
    n.append(helper.make_node("Greater", [p + "s_scaled", p + "min_s"], [p + "good"]))
    n.append(helper.make_node("And", [p + "mutual", p + "good"], [p + "keep"]))
    n.append(helper.make_node("Compress", [p + "i_all", p + "keep"], [p + "i"], axis=0))
    n.append(helper.make_node("Compress", [p + "j_all", p + "keep"], [p + "j"], axis=0))
    n.append(helper.make_node("Compress", [p + "s_scaled", p + "keep"], [p + "s"], axis=0))
    return n


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def superpoint(path):
    nodes = extractor_nodes("image", MAX_KP, True, "e_")
    nodes.append(helper.make_node("Identity", ["e_kp"], ["keypoints"]))
    nodes.append(helper.make_node("Identity", ["e_vals"], ["scores"]))
    nodes.append(helper.make_node("Identity", ["e_desc"], ["descriptors"]))
    graph = helper.make_graph(
        nodes,
        "superpoint_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [
            helper.make_tensor_value_info("keypoints", TensorProto.INT64, [1, "N", 2]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "N"]),
            helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, [1, "N", DESC]),
        ],
    )
    save(graph, path)


def superpoint_fixed(path):
    """superpoint.onnx as scripts/export_lightglue_onnx.py writes the real extractor: a fixed
    input size and float keypoints."""
    nodes = extractor_nodes("image", MAX_KP, True, "e_")
    nodes.append(helper.make_node("Cast", ["e_kp"], ["keypoints"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Identity", ["e_vals"], ["scores"]))
    nodes.append(helper.make_node("Identity", ["e_desc"], ["descriptors"]))
    graph = helper.make_graph(
        nodes,
        "superpoint_fixed_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, FIXED_H, FIXED_W])],
        [
            helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, "N", 2]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "N"]),
            helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, [1, "N", DESC]),
        ],
    )
    save(graph, path)


def lightglue(path):
    nodes = []
    for name in ("kpts0", "kpts1", "desc0", "desc1"):
        nodes.append(helper.make_node("Squeeze", [name, "axis0"], [name + "_s"]))
    nodes.insert(0, const("axis0", np.array([0], np.int64)))
    nodes += matcher_nodes("desc0_s", "desc1_s", "kpts0_s", "kpts1_s", "m_")
    nodes.append(const("m1", np.array([-1], np.int64)))
    nodes.append(helper.make_node("Unsqueeze", ["m_i", "m1"], ["i1"]))
    nodes.append(helper.make_node("Unsqueeze", ["m_j", "m1"], ["j1"]))
    nodes.append(helper.make_node("Concat", ["i1", "j1"], ["matches0"], axis=1))
    nodes.append(helper.make_node("Identity", ["m_s"], ["mscores0"]))
    graph = helper.make_graph(
        nodes,
        "lightglue_standin",
        [
            helper.make_tensor_value_info("kpts0", TensorProto.FLOAT, [1, "N0", 2]),
            helper.make_tensor_value_info("kpts1", TensorProto.FLOAT, [1, "N1", 2]),
            helper.make_tensor_value_info("desc0", TensorProto.FLOAT, [1, "N0", DESC]),
            helper.make_tensor_value_info("desc1", TensorProto.FLOAT, [1, "N1", DESC]),
        ],
        [
            helper.make_tensor_value_info("matches0", TensorProto.INT64, ["M", 2]),
            helper.make_tensor_value_info("mscores0", TensorProto.FLOAT, ["M"]),
        ],
    )
    save(graph, path)


def end_to_end(path):
    nodes = extractor_nodes("images", E2E_KP, False, "e_")
    nodes.append(helper.make_node("Identity", ["e_kp"], ["keypoints"]))
    # Split the batch of two and normalise the keypoints by the long edge.
    nodes.append(const("b0", np.array(0, np.int64)))
    nodes.append(const("b1", np.array(1, np.int64)))
    nodes.append(helper.make_node("Gather", ["e_desc", "b0"], ["d0"], axis=0))
    nodes.append(helper.make_node("Gather", ["e_desc", "b1"], ["d1"], axis=0))
    nodes.append(helper.make_node("Cast", ["e_kp"], ["kpf"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Shape", ["images"], ["ishape"]))
    nodes.append(const("hw_idx", np.array([3, 2], np.int64)))
    nodes.append(helper.make_node("Gather", ["ishape", "hw_idx"], ["wh_i"], axis=0))
    nodes.append(helper.make_node("Cast", ["wh_i"], ["wh"], to=TensorProto.FLOAT))
    nodes.append(const("half", np.array(0.5, np.float32)))
    nodes.append(helper.make_node("Mul", ["wh", "half"], ["shift"]))
    nodes.append(helper.make_node("ReduceMax", ["shift"], ["scale"], keepdims=1))
    nodes.append(helper.make_node("Sub", ["kpf", "shift"], ["kc"]))
    nodes.append(helper.make_node("Div", ["kc", "scale"], ["kn"]))
    nodes.append(helper.make_node("Gather", ["kn", "b0"], ["k0"], axis=0))
    nodes.append(helper.make_node("Gather", ["kn", "b1"], ["k1"], axis=0))
    nodes += matcher_nodes("d0", "d1", "k0", "k1", "m_")
    nodes.append(const("m1", np.array([-1], np.int64)))
    nodes.append(helper.make_node("Unsqueeze", ["m_i", "m1"], ["i1"]))
    nodes.append(helper.make_node("Unsqueeze", ["m_j", "m1"], ["j1"]))
    nodes.append(helper.make_node("Mul", ["i1", "b0"], ["batch"]))
    nodes.append(helper.make_node("Concat", ["batch", "i1", "j1"], ["matches"], axis=1))
    nodes.append(helper.make_node("Identity", ["m_s"], ["mscores"]))
    graph = helper.make_graph(
        nodes,
        "superpoint_lightglue_standin",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [2, 1, "H", "W"])],
        [
            helper.make_tensor_value_info("keypoints", TensorProto.INT64, [2, E2E_KP, 2]),
            helper.make_tensor_value_info("matches", TensorProto.INT64, ["M", 3]),
            helper.make_tensor_value_info("mscores", TensorProto.FLOAT, ["M"]),
        ],
    )
    save(graph, path)


def roma(path):
    s = ROMA_S
    n = []
    n.append(const("cells_shape", np.array([0, -1, 3], np.int64)))
    for side in ("A", "B"):
        n.append(helper.make_node("Transpose", ["img_" + side], ["t" + side], perm=[0, 2, 3, 1]))
        n.append(helper.make_node("Reshape", ["t" + side, "cells_shape"], ["c" + side]))
        n.append(helper.make_node("Mul", ["c" + side, "c" + side], ["sq" + side]))
        n.append(helper.make_node("ReduceSum", ["sq" + side, "last"], ["n" + side], keepdims=1))
    n.insert(0, const("last", np.array([-1], np.int64)))
    # Squared colour distance [B, S*S (A), S*S (B)].
    n.append(helper.make_node("Transpose", ["cB"], ["cBt"], perm=[0, 2, 1]))
    n.append(helper.make_node("MatMul", ["cA", "cBt"], ["dot"]))
    n.append(helper.make_node("Transpose", ["nB"], ["nBt"], perm=[0, 2, 1]))
    n.append(helper.make_node("Add", ["nA", "nBt"], ["nn"]))
    n.append(const("two", np.array(2.0, np.float32)))
    n.append(helper.make_node("Mul", ["dot", "two"], ["dot2"]))
    n.append(helper.make_node("Sub", ["nn", "dot2"], ["dist_raw"]))
    n.append(const("zero", np.array(0.0, np.float32)))
    n.append(helper.make_node("Max", ["dist_raw", "zero"], ["dist"]))
    # Soft-argmin over B's cell centres.
    n.append(const("neg_inv_tau", np.array(-1.0 / 4e-5, np.float32)))
    n.append(helper.make_node("Mul", ["dist", "neg_inv_tau"], ["logits"]))
    n.append(helper.make_node("Softmax", ["logits"], ["weights"], axis=-1))
    centres = (np.arange(s, dtype=np.float32) + 0.5) / s * 2.0 - 1.0
    gx, gy = np.meshgrid(centres, centres)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
    n.append(const("grid", grid))
    n.append(helper.make_node("MatMul", ["weights", "grid"], ["warp_flat"]))
    n.append(const("warp_shape", np.array([0, s, s, 2], np.int64)))
    n.append(helper.make_node("Reshape", ["warp_flat", "warp_shape"], ["warp_AB"]))
    # Overlap from the best colour distance.
    n.append(helper.make_node("ReduceMin", ["dist"], ["best"], axes=[-1], keepdims=0))
    n.append(const("neg_inv_o", np.array(-1.0 / 3e-4, np.float32)))
    n.append(helper.make_node("Mul", ["best", "neg_inv_o"], ["oarg"]))
    n.append(helper.make_node("Exp", ["oarg"], ["o_flat"]))
    n.append(const("o_shape", np.array([0, s, s], np.int64)))
    n.append(helper.make_node("Reshape", ["o_flat", "o_shape"], ["overlap_AB"]))
    graph = helper.make_graph(
        n,
        "roma_standin",
        [
            helper.make_tensor_value_info("img_A", TensorProto.FLOAT, ["B", 3, s, s]),
            helper.make_tensor_value_info("img_B", TensorProto.FLOAT, ["B", 3, s, s]),
        ],
        [
            helper.make_tensor_value_info("warp_AB", TensorProto.FLOAT, ["B", s, s, 2]),
            helper.make_tensor_value_info("overlap_AB", TensorProto.FLOAT, ["B", s, s]),
        ],
    )
    save(graph, path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "onnx")
    os.makedirs(out, exist_ok=True)
    superpoint(os.path.join(out, "superpoint.onnx"))
    superpoint_fixed(os.path.join(out, "superpoint_fixed.onnx"))
    lightglue(os.path.join(out, "lightglue.onnx"))
    end_to_end(os.path.join(out, "superpoint_lightglue.onnx"))
    roma(os.path.join(out, "roma.onnx"))
    for name in sorted(os.listdir(out)):
        print(name, os.path.getsize(os.path.join(out, name)), "bytes")


if __name__ == "__main__":
    main()
