"""The compute API against its own OpenAPI document, with generated requests (schemathesis):
every operation, examples, coverage, fuzzing and stateful phases; zero server errors, zero
responses outside the document (status codes, schemas, content types, headers).

Bounded for the suite (a few examples per operation, a fixed seed); benchmarks/reliability.py
runs a longer one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.compute.conftest import start_api

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])


def run_schemathesis(base: str, token: str, report: str, *, examples: int, seed: int = 1, max_time_s: int = 240) -> dict:
    """One schemathesis run against a live API; its JSON report."""
    completed = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
         "--header", f"Authorization: Bearer {token}", "--checks", CHECKS, "--max-examples", str(examples),
         "--seed", str(seed), "--max-time", str(max_time_s), "--request-timeout", "120", "--workers", "1",
         "--report", "json", "--report-json-path", report],
        capture_output=True, text=True, timeout=max_time_s + 300,
    )
    with open(report) as handle:
        result = json.load(handle)
    result["stdout"] = completed.stdout
    result["returncode"] = completed.returncode
    return result


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server = start_api(tmp_path_factory.mktemp("schema-data"), "--workers", "1")
    yield server
    server.stop()


def test_every_operation_keeps_to_the_document(api, tmp_path):
    result = run_schemathesis(api.base, api.token, str(tmp_path / "report.json"), examples=5, max_time_s=150)
    assert result["failures"] == [], result["stdout"][-6000:]
    assert result["errors"] == [], result["stdout"][-6000:]
    assert result["returncode"] == 0, result["stdout"][-6000:]
    operations = result["operations"]
    assert operations["selected"] == operations["tested"] == operations["total"] >= 15, operations
    assert all(phase["status"] == "success" for phase in result["phases"].values()), result["phases"]
    assert result["test_cases"]["generated"] >= 100
    assert api.process.poll() is None
    assert "Traceback" not in api.log(), api.log()[-4000:]
