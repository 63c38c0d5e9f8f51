"""``python -m slicer_cloud.compute.modules.builtin --export FOLDER``: write executable shims."""

from __future__ import annotations

import argparse
from pathlib import Path

from slicer_cloud.compute.modules.builtin import NAMES, export_shims

parser = argparse.ArgumentParser(description="The built-in slicer-cloud CLI modules.")
parser.add_argument("--export", type=Path, help="write one executable per module into this folder")
args = parser.parse_args()
if args.export:
    for path in export_shims(args.export):
        print(path)
else:
    print("\n".join(NAMES))
