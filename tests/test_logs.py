"""The one logging set-up: levels from the option or the setting, library chatter kept for debug."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.logs import resolve_level, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_level_comes_from_the_setting_in_any_case(monkeypatch):
    monkeypatch.setenv("SLICER_CLOUD_LOG_LEVEL", "DEBUG")
    assert resolve_level() == "debug"
    monkeypatch.setenv("SLICER_CLOUD_LOG_LEVEL", "loud")
    with pytest.raises(SlicerCloudError, match="SLICER_CLOUD_LOG_LEVEL='loud' is not a log level"):
        resolve_level()
    assert resolve_level("Warn") == "warning"


def test_library_info_lines_show_at_debug_only(capsys, monkeypatch):
    monkeypatch.delenv("SLICER_CLOUD_LOG_LEVEL", raising=False)
    setup_logging()
    logging.getLogger("trame_server.utils.namespace").info("has(x => y)")
    logging.getLogger("slicer_cloud.viewer").info("opened ct.nrrd")
    logging.getLogger("trame_server.utils.namespace").warning("a real problem")
    err = capsys.readouterr().err
    assert "has(" not in err
    assert "INFO slicer_cloud.viewer: opened ct.nrrd" in err
    assert "WARNING trame_server.utils.namespace: a real problem" in err

    setup_logging("debug", tag="session abc")
    logging.getLogger("trame_server.utils.namespace").info("has(x => y)")
    err = capsys.readouterr().err
    assert "session abc INFO trame_server.utils.namespace: has(x => y)" in err
    assert len(logging.getLogger().handlers) == 1  # set up twice, one handler


def test_a_bad_log_level_option_is_refused_with_the_choices():
    done = subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "view", "--log-level", "loud", "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--log-level 'loud' is not a log level: use one of debug, info, warning, error" in done.stderr
