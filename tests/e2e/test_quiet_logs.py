"""What ``slicer-cloud view`` prints while a browser tab uses it: at the default level the lines a
user acts on, with trame's template compiler (``has(... => ...)``) kept for ``--log-level debug``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slicer_cloud.core.phantom import make_phantom, write_nrrd
from tests.conftest import start_service
from tests.e2e.test_viewer_browser import open_page, wait_for_view

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("quiet-data")
    phantom = make_phantom(shape=(64, 64, 32), spacing=(3.0, 3.0, 6.0))
    write_nrrd(folder / "ct.nrrd", phantom.array, phantom.spacing, phantom.origin)
    return folder


def run_a_tab(browser, data_dir: Path, log_path: Path, level: str | None) -> str:
    """Start the viewer, open the file in a tab until it shows, stop the viewer; its whole log."""
    args = ["view", "--data", str(data_dir), "--port", "0", "--no-open"]
    if level:
        args += ["--log-level", level]
    env = {"SLICER_CLOUD_SPARE_SESSIONS": "0"}  # one process: the tab's
    service = start_service(args, cwd=data_dir, log_path=log_path, env=env)
    try:
        context, page = open_page(browser, service.url + "&open=ct.nrrd")
        try:
            wait_for_view(page, 0)
        finally:
            context.close()
    finally:
        service.stop()
    return service.log()


def test_the_default_level_shows_what_a_user_acts_on(browser, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("SLICER_CLOUD_LOG_LEVEL", raising=False)
    log = run_a_tab(browser, data_dir, tmp_path / "view.log", None)
    assert "has(" not in log
    assert " DEBUG " not in log
    assert re.search(r"Serving on http://127\.0\.0\.1:\d+/\?token=", log)
    started = re.search(r"INFO slicer_cloud\.viewer: session ([0-9a-f]+) started for a new tab", log)
    assert started, log
    # the tab's session process names itself on each of its lines
    assert f"session {started.group(1)} INFO slicer_cloud.viewer: opened ct.nrrd" in log
    # VTK speaks through logging, and no X interactor exists to warn about X events
    assert "vtkXRenderWindowInteractor" not in log
    assert "Warning: In " not in log
    assert len(log.splitlines()) < 40, log


def test_debug_shows_the_template_compiler(browser, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("SLICER_CLOUD_LOG_LEVEL", raising=False)
    log = run_a_tab(browser, data_dir, tmp_path / "view.log", "debug")
    assert "has(" in log
    assert re.search(r"session [0-9a-f]+ DEBUG ", log)
