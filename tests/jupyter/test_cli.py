"""Bad options of ``serve`` and ``hub`` fail at once with a clear message (exit code 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slicer_cloud.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize(
    "args,message",
    [
        (["serve", "--data", "missing-folder", "--port", "0"], "is not a folder"),
        (["serve", "--ip", "0.0.0.0", "--token", "", "--port", "0"], "without a token"),
        (["hub", "--config", "missing_config.py", "--port", "0"], "is not a file"),
    ],
)
def test_bad_options_fail_with_a_message(tmp_path: Path, args: list[str], message: str):
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
