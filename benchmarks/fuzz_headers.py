"""Coverage-guided fuzzing (atheris, libFuzzer's engine) of the image header readers.

One reader per run: ``python -m benchmarks.fuzz_headers FORMAT SEEDS_DIR [libFuzzer options]``
with FORMAT one of nrrd, nifti, metaimage, dicom. Every input is written to a file with that
format's suffix and checked by :func:`slicer_cloud.core.images.inspect_image`, the one check
every entry point runs. A refusal (:class:`SlicerCloudError`) is the right answer; any other
exception, a hang past ``-timeout`` or memory past ``-rss_limit_mb`` is a crash, which libFuzzer
saves under ``-artifact_prefix``. ``benchmarks.reliability`` runs this for a fixed budget.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris
import numpy  # noqa: F401  (imported before instrumenting: numpy's own code is not under test)

# Coverage guides the search through our readers and through pydicom's parser (DICOM headers).
with atheris.instrument_imports(include=["slicer_cloud", "pydicom"]):
    import pydicom  # noqa: F401
    from slicer_cloud.config import Limits
    from slicer_cloud.core import dicom, images, nrrd_io  # noqa: F401  (instrumented for coverage)
    from slicer_cloud.errors import SlicerCloudError

SUFFIXES = {"nrrd": ".nrrd", "nifti": ".nii", "metaimage": ".mha", "dicom": ".dcm"}
#: small limits so that a header declaring a big image is refused before anything is allocated
LIMITS = Limits(max_voxels=4_000_000, max_decompressed_bytes=16 * 1024 * 1024)


def main() -> None:
    fmt = sys.argv[1]
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    target = folder / f"input{SUFFIXES[fmt]}"

    def one_input(data: bytes) -> None:
        target.write_bytes(data)
        try:
            images.inspect_image(target, LIMITS)
        except SlicerCloudError:
            pass  # refused with a reason: what every malformed file must get

    atheris.Setup([sys.argv[0], *sys.argv[3:], sys.argv[2]], one_input)
    try:
        atheris.Fuzz()
    finally:
        target.unlink(missing_ok=True)
        os.rmdir(folder)


if __name__ == "__main__":
    main()
