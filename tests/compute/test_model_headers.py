"""Surface models: a header that declares more than its file holds is refused with the reason
before a VTK reader allocates (it would abort the process), and well-formed files still pass."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pytest

from slicer_cloud.compute.inspect import read_model
from slicer_cloud.core.model_headers import check_model_file
from slicer_cloud.errors import SlicerCloudError

TWO_BILLION = 2_000_000_000

HOSTILE = {
    # the 150-byte PLY of the report: two billion vertices declared, twelve bytes of data
    "vertices.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 2000000000\nproperty float x\n"
    b"property float y\nproperty float z\nend_header\n" + b"\0" * 12,
    "vertices-ascii.ply": b"ply\nformat ascii 1.0\nelement vertex 2000000000\nproperty float x\nproperty float y\n"
    b"property float z\nend_header\n0 0 0\n",
    "faces.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
    b"property float z\nelement face 2000000000\nproperty list uchar int vertex_indices\nend_header\n" + b"\0" * 36,
    "triangles.stl": b"\0" * 80 + struct.pack("<I", TWO_BILLION) + b"\0" * 50,
    "points.vtk": b"# vtk DataFile Version 3.0\nx\nBINARY\nDATASET POLYDATA\nPOINTS 2000000000 float\n" + b"\0" * 12,
    "polygons.vtk": b"# vtk DataFile Version 3.0\nx\nASCII\nDATASET POLYDATA\nPOINTS 1 float\n0 0 0\n"
    b"POLYGONS 1 2000000000\n1 0\n",
    "scalars.vtk": b"# vtk DataFile Version 3.0\nx\nASCII\nDATASET POLYDATA\nPOINTS 1 float\n0 0 0\n"
    b"POINT_DATA 1\nSCALARS s float 2000000000\nLOOKUP_TABLE default\n0\n",
    "points.vtp": b'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">\n'
    b'<PolyData><Piece NumberOfPoints="2000000000" NumberOfVerts="0" NumberOfLines="0" NumberOfStrips="0" '
    b'NumberOfPolys="0"><Points><DataArray type="Float32" NumberOfComponents="3" format="ascii">0 0 0'
    b"</DataArray></Points></Piece></PolyData></VTKFile>\n",
}


@pytest.fixture(scope="module")
def valid_models(tmp_path_factory) -> list[Path]:
    """A sphere with normals in every format and encoding the project reads."""
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
    from vtkmodules.vtkFiltersSources import vtkSphereSource
    from vtkmodules.vtkIOGeometry import vtkOBJWriter, vtkSTLWriter
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter
    from vtkmodules.vtkIOPLY import vtkPLYWriter
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    folder = tmp_path_factory.mktemp("models")
    sphere = vtkSphereSource()
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(sphere.GetOutputPort())
    normals.Update()
    written = []
    variants = [
        (vtkSTLWriter, "binary.stl", ["SetFileTypeToBinary"]), (vtkSTLWriter, "ascii.stl", ["SetFileTypeToASCII"]),
        (vtkOBJWriter, "sphere.obj", []),
        (vtkPolyDataWriter, "binary.vtk", ["SetFileTypeToBinary"]), (vtkPolyDataWriter, "ascii.vtk", ["SetFileTypeToASCII"]),
        (vtkPLYWriter, "binary.ply", ["SetFileTypeToBinary"]), (vtkPLYWriter, "ascii.ply", ["SetFileTypeToASCII"]),
        (vtkXMLPolyDataWriter, "compressed.vtp", []), (vtkXMLPolyDataWriter, "ascii.vtp", ["SetDataModeToAscii"]),
        (vtkXMLPolyDataWriter, "raw.vtp", ["SetDataModeToAppended", "SetCompressorTypeToNone"]),
    ]  # fmt: skip
    for writer_class, name, calls in variants:
        writer = writer_class()
        writer.SetFileName(str(folder / name))
        writer.SetInputData(normals.GetOutput())
        for call in calls:
            getattr(writer, call)()
        writer.Write()
        written.append(folder / name)
    legacy = vtkPolyDataWriter()  # the format before 5 (cell sizes, not offsets)
    legacy.SetFileName(str(folder / "legacy42.vtk"))
    legacy.SetInputData(normals.GetOutput())
    legacy.SetFileVersion(42)
    legacy.Write()
    written.append(folder / "legacy42.vtk")
    return written


def test_well_formed_models_pass_the_check_and_read(valid_models):
    for path in valid_models:
        check_model_file(path)
        assert read_model(path).GetNumberOfPoints() > 0, path.name


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_declared_counts_past_the_file_size_are_refused_with_the_reason(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    with pytest.raises(SlicerCloudError) as refused:
        read_model(path)  # in this process: before the check, the PLY ones abort it
    message = refused.value.message
    assert refused.value.status == 400
    assert message.startswith(f"{name} is not a surface model") and "declares" in message


def test_the_api_refuses_the_hostile_ply_and_keeps_serving(api, valid_models):
    with httpx.Client(base_url=api.base, headers=api.headers, timeout=120) as http:
        hostile = http.post("/api/items", files={"file": ("evil.ply", HOSTILE["vertices.ply"])})
        assert hostile.status_code == 400
        assert "2,000,000,000 vertex elements" in hostile.json()["detail"]
        good = next(p for p in valid_models if p.name == "binary.ply")
        accepted = http.post("/api/items", files={"file": ("sphere.ply", good.read_bytes())})
        assert accepted.status_code == 201 and accepted.json()["kind"] == "model"
        assert http.get("/api/health").status_code == 200
