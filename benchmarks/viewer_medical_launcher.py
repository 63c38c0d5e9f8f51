"""Start trame-slicer's ``medical-viewer`` with a volume already loaded (benchmark use only).

The medical viewer has no option to open a file on the server: it only loads what a browser
uploads. To time it with a volume preloaded, this launcher builds its ``MedicalViewerApp`` and
hands the file to the app's own upload handler (``LoadVolumeLogic._on_load_volume_files``, a
private method: the same code an upload runs once the bytes are on disk) before the server
starts listening, so "page served" comes after the load, as it would for a real preload.

Run: ``python -m benchmarks.viewer_medical_launcher --port P [--host 127.0.0.1] [--file F]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.viewer_medical_launcher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--file", type=Path, default=None, help="volume to load before serving")
    args = parser.parse_args()
    # trame reads its own options from sys.argv: leave it only what it understands.
    sys.argv = [sys.argv[0], "--server"]
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

    from trame_slicer.app.medical_viewer_app import MedicalViewerApp

    app = MedicalViewerApp()
    if args.file is not None:
        if not args.file.is_file():
            raise SystemExit(f"{args.file} is not a file")
        app._logic._load_files_logic._on_load_volume_files([str(args.file)])  # noqa: SLF001 (no public loader)
    app.server.start(port=args.port, host=args.host, open_browser=False, timeout=0)


if __name__ == "__main__":
    main()
