"""Every corpus file through every entry point: the same verdict everywhere, a reason that names
the file in words (no exception text), and every server still answering afterwards.

Entry points: ``slicer-cloud inspect``, the notebook's ``show``, ``slicer-cloud run`` (a batch),
the compute API (upload and register), the web viewer's upload and its ``?open=`` links. Each
server starts once for this module. ``?open=`` costs a new session process (seconds) per file,
so it takes the classes added for the untrusted-images work and the path checks; the viewer's
upload (the same check, then the same open) takes every file case in one tab.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from slicer_cloud.errors import SlicerCloudError
from tests.compute.conftest import start_api
from tests.conftest import start_service


def _load_corpus():
    name = "slicer_cloud_test_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "make_corpus.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus = _load_corpus()

#: Cases about a limit run with that limit lowered; the services here run with the defaults,
#: under which those files are fine (tests/core checks them with their limits).
CASES = [case for case in corpus.CASES if not case.limits]


def _jpeg_lossless_decodable() -> bool:
    from pydicom.uid import JPEGLosslessSV1

    from slicer_cloud.core.dicom import _transfer_syntax_problem

    return _transfer_syntax_problem(JPEGLosslessSV1) is None


if _jpeg_lossless_decodable():
    # With a JPEG decoder installed (pylibjpeg, GDCM) this case is a series of corrupt JPEG frames,
    # which only decoding finds: inspect (headers only) cannot, the readers refuse it. It stays
    # in tests/core with that installation's verdict; here it would only measure the installation.
    CASES = [case for case in CASES if case.name != "dicom_jpeg_lossless"]

#: ``?open=`` starts a session process per file (seconds each): the classes added for the
#: untrusted-images work and the two path checks; the upload test opens every file in one tab.
OPEN_LINK_CASES = {
    "dicom_short_pixels_file", "dicom_deep_sequences", "dicom_deep_sequences_folder", "nifti_nan_vox_offset",
    "nhdr_escape", "text_file",
}

#: Where an entry point refuses for the same cause in its own words (it offers another remedy).
OWN_WORDS = {
    # the API imports one series at a time and asks for its uid
    ("dicom_two_series", "api register"): "choose one with series_uid",
    # the API stores files of known kinds only; text is not one
    ("text_file", "api upload"): "unknown file type",
    ("text_file", "api register"): "unknown file type",
    ("text_file", "batch run"): "unknown image format",
}

#: Texts of Python exceptions that must never reach a user.
EXCEPTION_TEXT = re.compile(
    r"Traceback|maximum recursion|cannot convert float|Error\(|Exception\(|object has no attribute|"
    r"unsupported operand|invalid literal|struct\.error|index out of range"
)


@dataclass
class Verdict:
    refused: bool
    message: str
    status: int | None = None


def _check(case, entry: str, verdict: Verdict, target: Path) -> None:
    where = f"{case.name} via {entry}"
    assert verdict.refused, f"{where} was accepted"
    if verdict.status is not None:
        assert 400 <= verdict.status < 500, f"{where}: status {verdict.status}: {verdict.message}"
    assert not EXCEPTION_TEXT.search(verdict.message), f"{where} shows exception text: {verdict.message}"
    names = {target.name} | ({p.name for p in target.rglob("*")} if target.is_dir() else set())
    assert any(name in verdict.message for name in names), f"{where} does not name the file: {verdict.message}"
    expected = OWN_WORDS.get((case.name, entry), case.message)
    assert expected.lower() in verdict.message.lower(), f"{where}: {verdict.message!r} lacks {expected!r}"


def _is_upload(case, target: Path) -> bool:
    """Uploads carry one file: folders are not uploaded."""
    return target.is_file()


#: Detached headers whose data file is fine in place: uploaded alone, the data file is missing.
NEEDS_ITS_DATA_FILE = {"nhdr_symlink_escape", "nhdr_truncated", "mhd_truncated"}


def _as_uploaded(case):
    """The case as an upload of its one file is refused (the same, unless its data file stays behind)."""
    if case.name in NEEDS_ITS_DATA_FILE:
        return corpus.Case(case.name, case.build, 400, "is missing")
    return case


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("corpus-data")
    built = {}
    for case in CASES:
        folder = root / case.name
        folder.mkdir()
        built[case.name] = case.build(folder)
    return root, built


# --------------------------------------------------------------------------------------------
# command line and notebook (in this process: one import for all files)


def test_inspect_command(data):
    from typer.testing import CliRunner

    from slicer_cloud.cli import app

    root, built = data
    runner = CliRunner()
    for case in CASES:
        result = runner.invoke(app, ["inspect", str(built[case.name])])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        output = result.output  # stdout and stderr
        _check(case, "inspect", Verdict(result.exit_code != 0, output), built[case.name])


def test_notebook_show(data):
    from slicer_cloud.notebook import show

    root, built = data
    for case in CASES:
        try:
            show(built[case.name])
        except SlicerCloudError as error:
            verdict = Verdict(True, error.message, error.status)
        else:
            verdict = Verdict(False, "")
        _check(case, "notebook show", verdict, built[case.name])


def test_batch_run(data, tmp_path):
    """One ``slicer-cloud run`` over every file case; summary.csv has each one's verdict."""
    root, built = data
    files = [(case, built[case.name]) for case in CASES if built[case.name].is_file()]
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", "--set", "lower=100", "--set", "upper=3000",
         "--out", str(out), "--workers", "2", *[str(path) for _, path in files]],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 1, completed.stderr[-3000:]  # every case failed, none crashed the batch
    with open(out / "summary.csv", newline="") as handle:
        rows = {row["input"]: row for row in csv.DictReader(handle)}
    for case, path in files:
        row = rows[str(path)]
        _check(case, "batch run", Verdict(row["state"] == "failed", row["error"]), path)
    # DICOM folders are not batch inputs (a batch runs on files): each is refused as such
    folders = [str(built[case.name]) for case in CASES if built[case.name].is_dir()]
    completed = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "run", "threshold", "--out", str(tmp_path / "folders"), *folders],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 1
    with open(tmp_path / "folders" / "summary.csv", newline="") as handle:
        states = {row["input"]: row["state"] for row in csv.DictReader(handle)}
    assert states == {folder: "failed" for folder in folders}


# --------------------------------------------------------------------------------------------
# the compute API


@pytest.fixture(scope="module")
def api(data):
    root, _ = data
    server = start_api(root, "--workers", "2")
    yield server
    server.stop()


def test_api_register_and_upload(api, data):
    root, built = data
    with httpx.Client(base_url=api.base, headers=api.headers, timeout=120) as client:
        for case in CASES:
            target = built[case.name]
            relative = str(target.relative_to(root))
            reply = client.post("/api/items", json={"path": relative})
            _check(case, "api register", Verdict(reply.status_code >= 400, reply.json().get("detail", ""), reply.status_code), target)
            if _is_upload(case, target):
                reply = client.post("/api/items", files={"file": (target.name, target.read_bytes())})
                verdict = Verdict(reply.status_code >= 400, reply.json().get("detail", ""), reply.status_code)
                _check(_as_uploaded(case), "api upload", verdict, target)
            assert client.get("/api/health").status_code == 200, f"the API stopped answering after {case.name}"
        assert client.get("/api/items").json()["total"] == 0  # nothing refused was kept
    assert api.process.poll() is None


# --------------------------------------------------------------------------------------------
# the web viewer


@pytest.fixture(scope="module")
def viewer(data, tmp_path_factory):
    root, _ = data
    service = start_service(
        ["view", "--data", str(root), "--port", "0", "--token", "corpus-token", "--no-open"],
        cwd=root,
        log_path=tmp_path_factory.mktemp("viewer-log") / "viewer.log",
        # room for every tab of this module: none waits for a closed one to be evicted
        env={"SLICER_CLOUD_SPARE_SESSIONS": "1", "SLICER_CLOUD_MAX_SESSIONS": "10", "SLICER_CLOUD_SESSION_START_TIMEOUT_S": "600"},
    )
    yield service
    service.stop()


def _message(page, timeout_ms: int = 120_000) -> str:
    page.wait_for_function("() => (document.querySelector('#sc-message')?.innerText || '').trim().length > 0", timeout=timeout_ms)
    return page.locator("#sc-message").inner_text()


def test_viewer_upload(browser, viewer, data):
    root, built = data
    page = browser.new_page()
    try:
        page.goto(viewer.url, timeout=180_000)  # a session process starts first
        page.locator("#sc-upload-input").wait_for(state="attached", timeout=120_000)
        for case in CASES:
            target = built[case.name]
            if not _is_upload(case, target):
                continue
            page.evaluate("() => window.trame.state.set('sc_message', '')")
            page.wait_for_function("() => !document.querySelector('#sc-message')", timeout=30_000)
            page.locator("#sc-upload-input").set_input_files(str(target))
            text = _message(page)
            _check(_as_uploaded(case), "viewer upload", Verdict("was not stored" in text, text), target)
        assert not (root / "uploads").exists() or not any((root / "uploads").iterdir())
        assert httpx.get(viewer.base + "api/health", timeout=30).status_code == 200
    finally:
        page.close()


def test_viewer_open_links(browser, viewer, data):
    root, built = data
    for case in CASES:
        if case.name not in OPEN_LINK_CASES:
            continue
        target = built[case.name]
        relative = str(target.relative_to(root))
        page = browser.new_page()
        try:
            page.goto(f"{viewer.url}&open={relative}", timeout=180_000)  # a session process starts first
            text = _message(page)
        finally:
            page.close()
        _check(case, "viewer ?open=", Verdict(True, text), target)
        assert httpx.get(viewer.base + "api/health", timeout=30).status_code == 200
    assert viewer.process.poll() is None
