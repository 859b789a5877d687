"""Executes the tutorial notebooks (docs/tutorial/*.ipynb) against an aquamvs binary.

Each notebook runs with nbclient in a fresh temporary folder (so its runs never write into
the repository), with AQUAMVS_BIN pointing at the binary. Any cell error fails the run.

    python scripts/notebooks.py --bin target/debug/aquamvs --write     # refresh in place
    python scripts/notebooks.py --bin target/debug/aquamvs --out DIR   # executed copies in DIR

`scripts/run_notebooks` (refresh) and the `notebooks` integration test (check) call it.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial"
NOTEBOOKS = ["benchmark.ipynb", "analysis.ipynb"]


def execute(path: Path, binary: Path, timeout: int):
    """Executes one notebook in a fresh temporary folder; returns it and the seconds taken."""
    nb = nbformat.read(path, as_version=4)
    os.environ["AQUAMVS_BIN"] = str(binary)
    # Figures are embedded as PNG and drawn the same way on every machine.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    with tempfile.TemporaryDirectory(prefix="aquamvs_notebook_") as work:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": work}},
            record_timing=False,
        )
        start = time.monotonic()
        client.execute()
        seconds = time.monotonic() - start
        # Outputs must not name the machine's temporary folder (they are committed).
        text = nbformat.writes(nb)
        for form in {work, os.path.realpath(work)}:
            if form in text:
                raise SystemExit(f"{path.name}: an output names the temporary folder {form}; "
                                 "print paths relative to the notebook's folder")
    return nb, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, type=Path, help="the aquamvs binary to run")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--write", action="store_true", help="write the outputs in place")
    target.add_argument("--out", type=Path, help="write executed copies into this folder")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("notebooks", nargs="*", default=NOTEBOOKS, help="names in docs/tutorial")
    args = parser.parse_args()

    binary = args.bin.resolve()
    if not binary.is_file():
        print(f"notebooks: {args.bin} is not a file; build it first (cargo build)",
              file=sys.stderr)
        return 1
    unknown = [name for name in args.notebooks if not (TUTORIAL / name).is_file()]
    if unknown:
        print(f"notebooks: no {', '.join(unknown)} in docs/tutorial (known: {', '.join(NOTEBOOKS)})",
              file=sys.stderr)
        return 1
    total = 0.0
    for name in args.notebooks:
        path = TUTORIAL / name
        try:
            nb, seconds = execute(path, binary, args.timeout)
        except CellExecutionError as err:
            print(f"notebooks: {name} failed:\n{err}", file=sys.stderr)
            return 1
        total += seconds
        dest = path if args.write else args.out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(dest)
        print(f"{name}: executed in {seconds:.1f} s -> {dest}")
    print(f"all notebooks: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
