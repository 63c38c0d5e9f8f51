"""The view layouts users pick from: quad, one slice view, three slices, 3D only."""

from __future__ import annotations

from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

LAYOUT_TITLES: dict[str, str] = {
    "quad": "Quad (3 slices + 3D)",
    "axial": "One view (axial)",
    "three": "Three slices",
    "3d": "3D only",
}
LAYOUT_ICONS: dict[str, str] = {
    "quad": "mdi-view-grid-outline",
    "axial": "mdi-square-outline",
    "three": "mdi-view-column-outline",
    "3d": "mdi-cube-outline",
}
DEFAULT_LAYOUT = "quad"


def view_layouts() -> dict[str, Layout]:
    axial = ViewLayoutDefinition.axial_view()
    coronal = ViewLayoutDefinition.coronal_view()
    sagittal = ViewLayoutDefinition.sagittal_view()
    threed = ViewLayoutDefinition.threed_view()
    return {
        "quad": Layout(
            LayoutDirection.Vertical,
            [
                Layout(LayoutDirection.Horizontal, [axial, threed]),
                Layout(LayoutDirection.Horizontal, [sagittal, coronal]),
            ],
        ),
        "axial": Layout(LayoutDirection.Vertical, [axial]),
        "three": Layout(LayoutDirection.Horizontal, [axial, sagittal, coronal]),
        "3d": Layout(LayoutDirection.Vertical, [threed]),
    }
