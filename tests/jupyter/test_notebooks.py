"""Every example notebook (and the starter notebook of ``slicer-cloud serve``), executed by
nbclient against a real Python kernel on a small generated volume; plus ``show``, ``Viewer`` and
``run`` checked directly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from slicer_cloud.errors import SlicerCloudError
from tests.jupyter.conftest import write_volume

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.ipynb"))
STARTER = Path(__file__).parents[2] / "src" / "slicer_cloud" / "jupyter" / "notebooks" / "getting-started.ipynb"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebook-data")
    write_volume(folder, "sample-ct.nrrd")
    return folder


def execute(notebook_path: Path, folder: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(notebook_path, as_version=4)
    env = dict(os.environ, SLICER_CLOUD_DATA_DIR=str(folder), VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow")
    # ipykernel forwards what C libraries write to stderr into the notebook, as for a user,
    # except when it believes it runs under pytest
    env.pop("PYTEST_CURRENT_TEST", None)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.km = client.create_kernel_manager()
    client.start_new_kernel(env=env, cwd=str(folder))
    client.start_new_kernel_client()
    try:
        client.execute(cleanup_kc=False)
    finally:
        client._cleanup_kernel()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode, mime: str) -> list:
    return [o["data"][mime] for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if mime in o.get("data", {})]


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"01-view-and-measure.ipynb", "02-segment-and-export-surface.ipynb", "03-batch-on-dask.ipynb", "dashboard.ipynb"} <= names


@pytest.mark.parametrize("notebook_path", [*EXAMPLES, STARTER], ids=lambda p: p.name)
def test_notebook_runs(notebook_path: Path, data: Path, tmp_path: Path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "sample-ct.nrrd").write_bytes((data / "sample-ct.nrrd").read_bytes())
    notebook = execute(notebook_path, folder)  # raises CellExecutionError on any failing cell
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if notebook_path.name in ("01-view-and-measure.ipynb", "getting-started.ipynb", "dashboard.ipynb"):
        assert outputs_of(notebook, "application/vnd.jupyter.widget-view+json"), "no widget was shown"
    if notebook_path.name == "01-view-and-measure.ipynb":
        assert len(outputs_of(notebook, "image/png")) >= 3
        assert "volume_ml" in "".join(outputs_of(notebook, "text/html"))  # the statistics DataFrame
    if notebook_path.name == "02-segment-and-export-surface.ipynb":
        assert (folder / "surface-results" / "bone.stl").stat().st_size > 84


# --- the functions themselves -------------------------------------------------------------------
@pytest.fixture
def in_data(data: Path, monkeypatch):
    monkeypatch.setenv("SLICER_CLOUD_DATA_DIR", str(data))
    return data


def test_show_renders_the_slices_and_refuses_bad_input(in_data: Path):
    data = in_data
    from slicer_cloud.notebook import render_png, show

    axial = np.asarray(Image.open(io.BytesIO(render_png(data / "sample-ct.nrrd", "axial", size=128))).convert("L"), dtype=float)
    assert axial.shape == (128, 128)
    assert axial[40:88, 40:88].mean() > axial[:8, :8].mean() + 20  # a body in air
    lung = render_png(data / "sample-ct.nrrd", "axial", preset="ct-lung", size=128)
    assert lung != render_png(data / "sample-ct.nrrd", "axial", preset="ct-bone", size=128)
    image = show({"path": "sample-ct.nrrd"}, view="coronal", size=96)  # an API item, relative to the data folder
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SlicerCloudError, match="view must be one of"):
        show(data / "sample-ct.nrrd", view="oblique")
    with pytest.raises(SlicerCloudError, match="No such file"):
        show(data / "missing.nrrd")


def test_viewer_controls_change_the_image(in_data: Path):
    from slicer_cloud.notebook import Viewer

    viewer = Viewer("sample-ct.nrrd", size=128)
    first = viewer.image.value
    assert first[:4] == b"\x89PNG" and viewer.slider.max == 47  # 48 axial slices
    viewer.slider.value = 5
    assert viewer.image.value != first
    viewer.orientation.value = "sagittal"
    assert viewer.slider.max == 95 and viewer.slider.value == 47
    viewer.preset.value = "custom"
    assert not viewer.window.disabled
    before = viewer.image.value
    viewer.window.value = 50.0
    assert viewer.image.value != before
    assert "Cannot" not in viewer.status.value


def test_run_returns_outputs_return_parameters_and_a_table(in_data: Path, tmp_path: Path):
    from slicer_cloud.notebook import configure, run

    configure(out=tmp_path / "results", engine="local")
    mask = run("threshold", input="sample-ct.nrrd", lower=200, upper=3000, progress=False)
    assert mask.state == "succeeded" and mask.outputs["output"].is_file()
    assert mask.returned["voxel_count"] > 0
    stats = run("segment_statistics", segmentation=mask.outputs["output"], progress=False)
    assert list(stats.table["voxel_count"]) == [mask.returned["voxel_count"]]
    assert not list((tmp_path / "results").glob(".work/*"))  # nothing half-written left behind
    with pytest.raises(SlicerCloudError, match="has no parameter"):
        run("threshold", input="sample-ct.nrrd", lowest=1)
    with pytest.raises(SlicerCloudError):
        run("threshold", input=tmp_path, progress=False)  # a folder is not an image: the job fails with its reason


def test_run_on_a_dask_cluster(in_data: Path, tmp_path: Path):
    from slicer_cloud.notebook import close_engines, configure, run

    configure(out=tmp_path / "results", engine="dask", scheduler=None, workers=1)
    try:
        mask = run("threshold", input="sample-ct.nrrd", lower=200, upper=3000, progress=False)
        assert mask.state == "succeeded" and mask.returned["voxel_count"] > 0
        assert mask.outputs["output"].parent == (tmp_path / "results").resolve()
    finally:
        close_engines()
        configure(engine="local")


def test_the_first_show_gives_one_image_and_nothing_on_stderr(data: Path, tmp_path: Path):
    """A headless kernel creates no X interactor and VTK's messages go to logging: the first
    ``show()`` of a fresh kernel shows the image and nothing else, no red text."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("from slicer_cloud.notebook import show\nshow('sample-ct.nrrd')")]
    path = tmp_path / "first-show.ipynb"
    nbformat.write(notebook, path)
    ran = execute(path, data)
    for cell in ran.cells:
        outputs = cell["outputs"]
        assert [o["output_type"] for o in outputs] == ["execute_result"], outputs
        assert set(outputs[0]["data"]) >= {"image/png"}
        assert not [o for o in outputs if o.get("name") == "stderr"]
