"""Fixtures for the core tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def slicer_app():
    """One Slicer application (slicer-core, offscreen) shared by the few tests that need it."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from trame_slicer.core import SlicerApp

    return SlicerApp()


@pytest.fixture(scope="session")
def load_in_slicer(slicer_app):
    """A function loading a file with Slicer's volume reader, giving (dimensions, spacing,
    RAS origin, IJK->RAS 3x3 directions)."""
    return lambda path: _load(slicer_app, path)


def _load(app, path):
    import vtk

    nodes = app.io_manager.load_volumes([str(path)])
    assert nodes, f"Slicer could not load {path}"
    node = nodes[0]
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(matrix)
    directions = [[matrix.GetElement(r, c) for c in range(3)] for r in range(3)]
    return node.GetImageData().GetDimensions(), node.GetSpacing(), node.GetOrigin(), directions
