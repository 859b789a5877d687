"""Shared pieces of scripts/export_roma_onnx.py and scripts/export_lightglue_onnx.py.

Nothing here downloads: the upstream packages fetch their weights (and RoMa v2 its DINOv3
backbone code) from the network when a model is built; `no_downloads` replaces those calls by
reads of files the user names, or, for the signature check of scripts/check_exports.sh, by
the freshly initialised (random) weights.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


class ExportError(SystemExit):
    """A one-line error for the user (exit status 1)."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


class _KeepInit(dict):
    """An empty state dict that tells the patched load_state_dict to keep the initialisation."""


_KEEP_INIT = _KeepInit()


@contextlib.contextmanager
def no_downloads(weights: dict[str, Path | None], random: bool, hub_repos: dict[str, Path]):
    """Patches torch.hub while upstream models are built.

    `weights` maps a substring of a weight URL to the local file that replaces it (`None`:
    not given). With `random`, every weight download is skipped and the modules keep their
    initialisation. `hub_repos` maps a torch.hub repository name (`owner/name`) to a local
    checkout of it.
    """
    real_url = torch.hub.load_state_dict_from_url
    real_hub_load = torch.hub.load
    real_load_state = nn.Module.load_state_dict

    def from_url(url, *args, **kwargs):
        if random:
            return _KEEP_INIT
        for key, path in weights.items():
            if key in url:
                if path is None:
                    raise ExportError(
                        f"the model needs the weights {url.rsplit('/', 1)[-1]}; pass their "
                        f"local path (see --help); this script never downloads"
                    )
                if not Path(path).is_file():
                    raise ExportError(f"weights file {path} does not exist")
                return torch.load(path, map_location="cpu", weights_only=True)
        raise ExportError(f"the model asked to download {url}; this script never downloads")

    def hub_load(repo_or_dir, model, *args, **kwargs):
        name = repo_or_dir.split(":")[0]
        if name not in hub_repos:
            raise ExportError(f"the model asked torch.hub for {repo_or_dir}; this script never downloads")
        kwargs.pop("skip_validation", None)
        kwargs.pop("source", None)
        local = hub_repos[name]
        if not (Path(local) / "hubconf.py").is_file():
            raise ExportError(f"{local} is not a checkout of {name} (it has no hubconf.py)")
        return real_hub_load(str(local), model, *args, source="local", **kwargs)

    def load_state(self, state_dict, *args, **kwargs):
        if isinstance(state_dict, _KeepInit):
            return None
        return real_load_state(self, state_dict, *args, **kwargs)

    torch.hub.load_state_dict_from_url = from_url
    torch.hub.load = hub_load
    nn.Module.load_state_dict = load_state
    try:
        yield
    finally:
        torch.hub.load_state_dict_from_url = real_url
        torch.hub.load = real_hub_load
        nn.Module.load_state_dict = real_load_state


class _Fp32Autocast(torch.autocast):
    """torch.autocast that never enables itself: the export computes in float32."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        super().__init__(device_type, dtype=dtype, enabled=False, cache_enabled=cache_enabled)


@contextlib.contextmanager
def float32_only():
    """Disables the upstream modules' bfloat16 autocast regions (they run on GPUs in bf16)."""
    real = torch.autocast
    torch.autocast = _Fp32Autocast
    try:
        yield
    finally:
        torch.autocast = real


@contextlib.contextmanager
def batched_max_pool():
    """max_pool2d of an unbatched [C, H, W] tensor as a batch of one.

    SuperPoint's non-maximum suppression pools its [B, H, W] score map; the exporter writes
    that as an ONNX MaxPool of rank 3, which ONNX Runtime rejects ("Attribute dilations has
    incorrect size"). Pooling acts per channel, so [1, C, H, W] gives the same values.
    """
    real = torch.nn.functional.max_pool2d

    def max_pool2d(x, *args, **kwargs):
        if x.dim() == 3:
            return real(x[None], *args, **kwargs)[0]
        return real(x, *args, **kwargs)

    torch.nn.functional.max_pool2d = max_pool2d
    try:
        yield
    finally:
        torch.nn.functional.max_pool2d = real


def register_deform_conv() -> None:
    """Exports torchvision's deform_conv2d (ALIKED's deformable convolutions) as ONNX's
    DeformConv (opset 19), which the TorchScript exporter does not know by itself and ONNX
    Runtime (1.31) runs on the CPU. Both use the same offset layout ((dy, dx) per kernel
    position and offset group); scripts/check_exports.sh compares the outputs."""
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx._internal.torchscript_exporter import symbolic_helper as sh

    @sh.parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i", "i", "i", "i", "i", "b")
    def deform_conv2d(g, x, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                      dil_h, dil_w, n_weight_grps, n_offset_grps, use_mask):
        inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
        return g.op(
            "DeformConv", *inputs,
            dilations_i=[dil_h, dil_w], group_i=n_weight_grps, offset_group_i=n_offset_grps,
            pads_i=[pad_h, pad_w, pad_h, pad_w], strides_i=[stride_h, stride_w],
        )

    register_custom_op_symbolic("torchvision::deform_conv2d", deform_conv2d, 19)


def export(
    module: nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict | None,
    opset: int,
    fp16: bool,
    dynamic_shapes: tuple | None = None,
) -> None:
    """Exports `module` and checks the file.

    With `dynamic_shapes` the graph is captured by torch.export (the "dynamo" exporter);
    otherwise by the TorchScript tracer with `dynamic_axes`. (LightGlue's matcher needs the
    former: the tracer loses tensor ranks in its attention and the export fails; the tracer
    handles RoMa and the extractors.) With `fp16`, weights and arithmetic become float16,
    inputs and outputs stay float32 (the signature aquamvs reads).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    started = time.time()
    if dynamic_shapes is not None:
        # torch.export (needs opset 18 or later); the weights stay inside the file.
        exporter = dict(dynamic_shapes=dynamic_shapes, opset_version=max(opset, 18),
                        dynamo=True, external_data=False)
    else:
        exporter = dict(dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
    with torch.no_grad():
        torch.onnx.export(module, args, str(tmp), input_names=input_names,
                          output_names=output_names, **exporter)
    model = onnx.load(str(tmp))
    if fp16:
        from onnxconverter_common import float16

        model = float16.convert_float_to_float16(model, keep_io_types=True)
    large = model.ByteSize() > 1_900_000_000
    if large:
        onnx.save(model, str(tmp), save_as_external_data=True, location=path.name + ".data")
        onnx.checker.check_model(str(tmp))
    else:
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    os.replace(tmp, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.time() - started:.0f} s")
    describe(path)


def describe(path: Path) -> None:
    """Prints the inputs and outputs of an ONNX file as aquamvs reads them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    types = {1: "f32", 7: "i64", 10: "f16", 9: "bool", 6: "i32"}

    def show(v):
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return f"{v.name} {types.get(t.elem_type, t.elem_type)} {dims}"

    print("  inputs:  " + "; ".join(show(v) for v in graph.input))
    print("  outputs: " + "; ".join(show(v) for v in graph.output))


def compare(module: nn.Module, feeds: dict[str, np.ndarray], path: Path, output_names: list[str],
            threads: int | None = None) -> dict[str, float]:
    """Runs `module` in PyTorch and the exported file in ONNX Runtime on the same inputs and
    prints the largest absolute difference per output (shapes must agree)."""
    import onnxruntime as ort

    with torch.no_grad():
        started = time.time()
        expected = module(*[torch.from_numpy(v) for v in feeds.values()])
        torch_s = time.time() - started
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    started = time.time()
    got = session.run(output_names, feeds)
    ort_s = time.time() - started
    expected = [e.numpy() for e in expected]
    diffs = {}
    for name, e, g in zip(output_names, expected, got):
        if e.shape != g.shape:
            raise ExportError(f"{path}: output {name} has shape {g.shape} in ONNX Runtime, {e.shape} in PyTorch")
        if e.dtype != g.dtype:
            raise ExportError(f"{path}: output {name} is {g.dtype} in ONNX Runtime, {e.dtype} in PyTorch")
        diff = float(np.abs(e.astype(np.float64) - g.astype(np.float64)).max()) if e.size else 0.0
        diffs[name] = diff
        print(f"  {name}: shape {list(g.shape)} {g.dtype}, max |PyTorch - ONNX Runtime| = {diff:.3g}")
    print(f"  PyTorch {torch_s:.1f} s, ONNX Runtime {ort_s:.1f} s")
    return diffs


def seed_everything(seed: int = 0) -> None:
    """Deterministic random weights and inputs."""
    torch.manual_seed(seed)
    np.random.seed(seed)
