"""Regenerates the AquaMVS 1.7.3 config fixtures with AquaMVS's own `init`.

    python3 -m venv /tmp/aqvenv
    /tmp/aqvenv/bin/pip install --no-deps aquamvs==1.7.3 && /tmp/aqvenv/bin/pip install pydantic pyyaml
    cd "$(mktemp -d)" && PYTHONHASHSEED=0 /tmp/aqvenv/bin/python PATH/TO/generate.py

It calls `aquamvs.cli.init_config`, the function behind `aquamvs init`, for no preset and each
preset, over a folder shaped like `aquamvs synth --rig tiny` with two ring cameras
(`images/cam00`, `images/cam01`, `images/center`, `calibration.json`), writing
`config_default.yaml` and `config_{fast,balanced,quality}.yaml`. `init_config` needs only
pydantic and PyYAML; the package's `__init__` (which demands PyTorch, LightGlue and RoMa) is
skipped, and the modules `cli.py` imports for other commands (OpenCV, AquaCal, the
calibration loader) are replaced by empty stand-ins. The paths it writes are relative to the
scene folder, as the tests place the fixtures there.
"""

import glob
import json
import sys
import types
from pathlib import Path

site = glob.glob(sys.prefix + "/lib/python3*/site-packages/aquamvs")
package = types.ModuleType("aquamvs")
package.__path__ = site
sys.modules["aquamvs"] = package
for name in ["cv2", "aquacal", "aquacal.io", "aquacal.io.video", "aquamvs.calibration",
             "aquamvs.cuda_alloc"]:
    stub = types.ModuleType(name)
    for attr in ["VideoSet", "compute_undistortion_maps", "load_calibration_data",
                 "undistort_image", "configure_cuda_allocator"]:
        setattr(stub, attr, None)
    sys.modules[name] = stub

from aquamvs.cli import init_config  # noqa: E402

cameras = ["cam00", "cam01", "center"]
for cam in cameras:
    Path("images", cam).mkdir(parents=True, exist_ok=True)
Path("calibration.json").write_text(
    json.dumps({"version": "1.0", "cameras": {c: {} for c in cameras}})
)
for preset in [None, "fast", "balanced", "quality"]:
    out = "config_default.yaml" if preset is None else f"config_{preset}.yaml"
    init_config(Path("images"), r"(cam\d+|center)", Path("calibration.json"), "output",
                Path(out), preset)
