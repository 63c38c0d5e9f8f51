"""``slicer-cloud run`` over a folder with one bad file: the batch goes on, the summary says why."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from .conftest import BOX_ML


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "run", *args], capture_output=True, text=True, timeout=timeout)


def test_a_folder_with_one_bad_file(tmp_path, ct_file):
    inputs = tmp_path / "cohort"
    inputs.mkdir()
    (inputs / "a.nrrd").write_bytes(ct_file.read_bytes())
    (inputs / "b.nii.gz").write_bytes(b"not really gzip")
    (inputs / "c.nrrd").write_bytes(ct_file.read_bytes())
    (inputs / "notes.txt").write_text("ignored: not an input file type")
    masks = tmp_path / "masks"
    done = _run("threshold", "--set", "lower=100", "--set", "upper=1000", "--set", "output={stem}-mask.nii.gz",
                "--workers", "2", "--out", str(masks), str(inputs))
    assert done.returncode == 1  # one case failed
    assert "2 of 3 succeeded" in done.stderr
    rows = {r["input"].split("/")[-1]: r for r in csv.DictReader(open(masks / "summary.csv"))}
    assert set(rows) == {"a.nrrd", "b.nii.gz", "c.nrrd"}
    assert rows["a.nrrd"]["state"] == "succeeded" and rows["a.nrrd"]["outputs"] == "a-mask.nii.gz"
    assert rows["b.nii.gz"]["state"] == "failed" and "b.nii.gz" in rows["b.nii.gz"]["error"]
    assert sorted(p.name for p in masks.iterdir()) == ["a-mask.nii.gz", "c-mask.nii.gz", "summary.csv"]

    # the masks feed the next step of the cohort: volumes in mL per case
    stats = tmp_path / "stats"
    done = _run("segment_statistics", "--out", str(stats), str(masks / "*.nii.gz"))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(stats / "summary.csv")))
    assert len(rows) == 2 and all(float(r["total_volume_ml"]) == pytest.approx(BOX_ML) for r in rows)


@pytest.mark.parametrize("args, message", [
    (["nope", "x.nrrd"], "Unknown module 'nope'"),
    (["threshold", "--set", "lower=abc", "x.nrrd"], "'lower': expects a number"),
    (["threshold", "--set", "colour=red", "x.nrrd"], "no parameter 'colour'"),
    (["threshold", "--set", "broken", "x.nrrd"], "NAME=VALUE"),
])
def test_bad_options_are_refused_before_any_case_runs(tmp_path, args, message):
    done = _run(*args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and message in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_input_is_a_failed_case(tmp_path, ct_file):
    done = _run("threshold", "--out", str(tmp_path / "out"), str(ct_file), str(tmp_path / "missing.nrrd"))
    assert done.returncode == 1
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert [r["state"] for r in rows] == ["succeeded", "failed"] and "No such file" in rows[1]["error"]


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0", "--token", ""], "without a token"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--modules-path", "/no/such/folder"], "is not a folder"),
])
def test_the_api_refuses_unsafe_or_broken_options(tmp_path, args, message):
    command = [sys.executable, "-m", "slicer_cloud.cli", "api", "--port", "0"]
    if "--data" not in args:
        command += ["--data", str(tmp_path)]
    done = subprocess.run(command + args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr
