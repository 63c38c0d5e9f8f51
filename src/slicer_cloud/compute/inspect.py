"""Work on untrusted files, meant to run in a worker process (never in the API process):
header checks, hashing, DICOM import, format conversion and rendering.

Every function takes and returns plain data so that it can cross a process boundary.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any

from slicer_cloud.config import Limits
from slicer_cloud.errors import SlicerCloudError

MODEL_SUFFIXES = (".stl", ".obj", ".vtp", ".vtk", ".ply", ".gltf", ".glb")
TABLE_SUFFIXES = (".csv", ".tsv")
_TABLE_PROBE_BYTES = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def kind_from_name(name: str) -> str | None:
    from slicer_cloud.core.images import IMAGE_SUFFIXES, image_kind

    lower = name.lower()
    if lower.endswith(IMAGE_SUFFIXES):
        return image_kind(Path(lower)) or "volume"
    if lower.endswith(MODEL_SUFFIXES):
        return "model"
    if lower.endswith(TABLE_SUFFIXES):
        return "table"
    return None


def _image_metadata(path: Path, limits: Limits) -> dict[str, Any]:
    from slicer_cloud.core.images import inspect_image

    info = inspect_image(path, limits)
    return {
        "dimensions": [int(n) for n in info.dimensions],
        "spacing": [float(v) for v in info.spacing],
        "origin": [float(v) for v in info.origin],
        "direction": [[float(v) for v in row] for row in info.direction],
        "scalar_type": info.scalar_type,
        "components": int(info.components),
        "is_segmentation": bool(info.is_segmentation),
    }


def _check_model(path: Path, limits: Limits) -> dict[str, Any]:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    polydata = read_model(path, limits)
    if polydata.GetNumberOfPoints() == 0:
        raise SlicerCloudError(f"{path.name} is not a readable surface model (no points).")
    return {}


def _check_table(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = handle.read(_TABLE_PROBE_BYTES)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if len(head) < _TABLE_PROBE_BYTES:
            raise SlicerCloudError(f"{path.name} is not a text table (it is not UTF-8).") from None
        text = head.decode("utf-8", "ignore")
    if "\x00" in text:
        raise SlicerCloudError(f"{path.name} is not a text table (it holds binary data).")
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    rows = list(csv.reader(text.splitlines()[:50], delimiter=delimiter))
    return {"dimensions": [max((len(r) for r in rows), default=0), len(text.splitlines())], "scalar_type": None}


def _is_dicom(file: Path) -> bool:
    from slicer_cloud.core.images import DICOM_SUFFIXES, is_dicom_file

    return file.name.lower().endswith(DICOM_SUFFIXES) or is_dicom_file(file)


def describe_file(path: str, kind: str | None, is_image: bool = False, limits: dict | None = None) -> dict[str, Any]:
    """What the index records about a file: kind, geometry (images), size, sha256.

    ``kind`` None: judged from the name; unknown names are refused (store them with kind=file).
    Raises a 4xx :class:`SlicerCloudError` for a file that is not what its name or kind says.
    """
    file = Path(path)
    limit = Limits(**limits) if limits else Limits()
    guessed = kind_from_name(file.name)
    if guessed is None and kind in (None, "volume", "segmentation") and _is_dicom(file):
        # Checked like everywhere else, so a damaged file is refused with its reason; a sound
        # one is a single slice, and series come in as folders (they are read into NRRD).
        from slicer_cloud.core.images import inspect_image

        inspect_image(file, limit)
        raise SlicerCloudError(
            f"{file.name} is a single DICOM file; register the folder that holds its series instead "
            '(JSON {"path": "folder"}), which reads the series into one volume.',
            status=415,
        )
    if kind is None:
        if guessed is None:
            raise SlicerCloudError(
                f"{file.name}: unknown file type. Images: .nrrd .nii .nii.gz .mha .mhd .nhdr; models: "
                f"{' '.join(MODEL_SUFFIXES)}; tables: .csv .tsv. To store any other file, give kind=file.",
                status=415,
            )
        kind = guessed
    meta: dict[str, Any] = {}
    if kind in ("volume", "segmentation") or is_image:
        if guessed not in ("volume", "segmentation"):
            raise SlicerCloudError(f"{file.name} does not have an image suffix (.nrrd, .nii.gz, .mha, ...).", status=415)
        meta = _image_metadata(file, limit)
        if kind not in ("volume", "segmentation"):
            kind = "volume"
        if meta.pop("is_segmentation"):
            kind = "segmentation"
    elif kind == "model":
        meta = _check_model(file, limit)
    elif kind == "table":
        meta = _check_table(file)
    meta.update(kind=kind, size=file.stat().st_size, sha256=sha256_of(file))
    return meta


def import_dicom(folder: str, target: str, series_uid: str | None = None, limits: dict | None = None) -> dict[str, Any]:
    """Read one DICOM series of ``folder`` and write it to ``target`` (NRRD); its metadata."""
    from slicer_cloud.core.dicom import choose_series, find_series, read_series
    from slicer_cloud.core.nrrd_io import write_nrrd

    limit = Limits(**limits) if limits else Limits()
    found = find_series(Path(folder), limit)
    if series_uid or len(found) <= 1:
        # the same verdicts (and words) as inspect and the viewer; a problem is raised when read
        series = [choose_series(Path(folder), limit, series_uid)]
    else:
        series = [s for s in found if s.problem is None]  # several: the readable ones count
    if not series:
        raise SlicerCloudError(f"{Path(folder).name} holds no DICOM image series that can be read.", status=400)
    if len(series) > 1:
        listing = "; ".join(f"{s.uid}: {s.label}" for s in series[:20])
        raise SlicerCloudError(f"{Path(folder).name} holds {len(series)} series; choose one with series_uid ({listing}).", status=422)
    array, info = read_series(series[0], limit)
    write_nrrd(Path(target), array, info.spacing, info.origin, info.direction)
    meta = describe_file(target, "volume", True, limits)
    meta["series_uid"] = series[0].uid
    meta["series"] = series[0].label
    return meta


def convert_volume(source: str, target: str, limits: dict | None = None) -> str:
    """Write the volume at ``source`` in the format of ``target``'s suffix (atomically)."""
    from slicer_cloud.compute.imageio import read_volume, write_volume

    limit = Limits(**limits) if limits else Limits()
    write_volume(Path(target), read_volume(Path(source), limit))
    return target


def read_model(path: Path, limits: Limits | None = None):
    """A vtkPolyData from STL, OBJ, VTP, VTK or PLY (glTF is written, not read); the header's
    declared sizes are checked against the file first (a reader trusts them when it allocates)."""
    from slicer_cloud.core.model_headers import check_model_file

    from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
    from vtkmodules.vtkIOLegacy import vtkPolyDataReader
    from vtkmodules.vtkIOPLY import vtkPLYReader
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    readers = {".stl": vtkSTLReader, ".obj": vtkOBJReader, ".vtp": vtkXMLPolyDataReader, ".vtk": vtkPolyDataReader, ".ply": vtkPLYReader}
    reader_class = readers.get(path.suffix.lower())
    if reader_class is None:
        raise SlicerCloudError(f"{path.name}: models are read from {', '.join(readers)}.", status=415)
    check_model_file(path, limits)
    reader = reader_class()
    reader.SetFileName(str(path))
    reader.Update()
    output = reader.GetOutput()
    if output is None or not hasattr(output, "GetNumberOfPoints"):
        raise SlicerCloudError(f"{path.name} is not a readable surface model.")
    return output


def convert_model(source: str, target: str, limits: dict | None = None) -> str:
    """Write the model at ``source`` as STL, OBJ, VTP, VTK, PLY or glTF (by ``target``'s suffix)."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from slicer_cloud.compute.modules.builtin.labelmap_to_model import write_polydata
    from slicer_cloud.store.atomic import atomic_output

    polydata = read_model(Path(source), Limits(**limits) if limits else None)
    out = Path(target)
    if out.suffix.lower() in (".gltf", ".glb"):
        from vtkmodules.vtkCommonDataModel import vtkMultiBlockDataSet
        from vtkmodules.vtkIOGeometry import vtkGLTFWriter

        # The writer reads its input as a scene: a block per renderer, in it a block per actor.
        actors = vtkMultiBlockDataSet()
        actors.SetNumberOfBlocks(1)
        actors.SetBlock(0, polydata)
        blocks = vtkMultiBlockDataSet()
        blocks.SetNumberOfBlocks(1)
        blocks.SetBlock(0, actors)
        with atomic_output(out) as tmp:
            writer = vtkGLTFWriter()
            writer.SetFileName(str(tmp))
            writer.SetInputData(blocks)
            writer.SetInlineData(True)  # one self-contained file (binary when the name ends .glb)
            writer.Write()
        return target
    write_polydata(polydata, out)
    return target


def render_slice_png(path: str, options: dict[str, Any], limits: dict | None = None) -> bytes:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from slicer_cloud.core.render import render_slice

    return render_slice(Path(path), limits=Limits(**limits) if limits else None, **options)


def render_volume_png(path: str, options: dict[str, Any], limits: dict | None = None) -> bytes:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from slicer_cloud.core.render import render_volume

    return render_volume(Path(path), limits=Limits(**limits) if limits else None, **options)


def warm_up() -> int:
    """Called once per worker so the first real request does not pay for the imports."""
    return os.getpid()
