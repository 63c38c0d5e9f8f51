"""Reliability under load, faults and hostile input; results into docs/reliability.md.

    python -m benchmarks.reliability [--load-seconds 60] [--clients 50] [--fuzz-seconds 60]
                                     [--schema-examples 30] [--skip-faults]

* Load: ``--clients`` concurrent API clients for ``--load-seconds`` (list, upload a small file,
  submit a job on it, read a slice render): 5xx count, lost uploads and jobs, p50/p99 per
  operation. Then 20 viewer tabs at once with the cap at 4: the most session processes seen,
  how many tabs were told to wait (503 + Retry-After) and whether every one was served on retry.
* Faults: the fault tests of the suite, run here and counted (each a kill -9).
* Hostile input: schemathesis over the API's OpenAPI document (more examples than the suite),
  and the coverage-guided header fuzzer (benchmarks/fuzz_headers.py) for ``--fuzz-seconds`` per
  reader, restarted after each crash; every crash input is kept for the corpus.

Every loop is bounded in count and time; only loopback is used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
FAULT_TESTS = [
    ("viewer session process", "tests/viewer/test_session_faults.py::test_kill_9_of_a_session_ends_only_its_tab"),
    ("job's process", "tests/compute/test_faults.py::test_kill_9_of_a_jobs_process_fails_the_job_and_the_queue_goes_on"),
    ("API process mid-upload", "tests/compute/test_faults.py::test_kill_9_of_the_api_mid_upload_leaves_nothing_partial"),
    ("API process mid-job", "tests/compute/test_restart.py::test_kill_9_during_a_job_leaves_it_interrupted"),
    ("Xvnc", "tests/desktop/test_lifecycle.py::test_killing_the_x_server_ends_the_service_cleanly"),
    ("a user's viewer behind the hub", "tests/hub/test_hub.py::test_a_crashed_viewer_harms_neither_the_other_user_nor_the_hub"),
    ("a user's Jupyter server behind the hub", "tests/hub/test_hub.py::test_a_killed_single_user_server_is_noticed_and_started_again"),
]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")]))}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --------------------------------------------------------------------------------------------
# load


def small_nrrd(seed: int) -> bytes:
    import numpy as np

    from slicer_cloud.core.nrrd_io import write_nrrd

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.nrrd"
        array = (np.arange(16 * 32 * 32).reshape(16, 32, 32) % 400 + seed % 7).astype(np.int16)
        write_nrrd(path, array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
        return path.read_bytes()


async def api_load(base: str, token: str, clients: int, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {"list": [], "upload": [], "submit": [], "render": []}
    statuses: dict[int, int] = {}
    uploaded: set[str] = set()
    submitted: set[str] = set()
    deadline = time.monotonic() + seconds
    payload = small_nrrd(1)

    async def timed(client: httpx.AsyncClient, op: str, method: str, url: str, **kwargs):
        start = time.monotonic()
        try:
            reply = await client.request(method, url, **kwargs)
        except httpx.HTTPError:
            statuses[-1] = statuses.get(-1, 0) + 1  # no answer at all
            return None
        latencies[op].append(time.monotonic() - start)
        statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        return reply

    async def one_client(number: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as client:
            rounds = 0
            while time.monotonic() < deadline and rounds < 10_000:
                rounds += 1
                await timed(client, "list", "GET", "/api/items", params={"limit": 20})
                reply = await timed(client, "upload", "POST", "/api/items", files={"file": (f"c{number}-{rounds}.nrrd", payload)})
                if reply is None or reply.status_code != 201:
                    continue
                item = reply.json()["id"]
                uploaded.add(item)
                job = await timed(client, "submit", "POST", "/api/jobs", json={"module": "threshold", "parameters": {"input": item, "lower": 100, "upper": 300}})
                if job is not None and job.status_code in (200, 202):
                    submitted.add(job.json()["id"])
                await timed(client, "render", "GET", f"/api/items/{item}/slice.png", params={"size": 64})

    started = time.monotonic()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    elapsed = time.monotonic() - started
    # every upload listed, every job listed and finished (bounded wait for the queue to drain)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        listed: set[str] = set()
        offset = 0
        while True:
            page = (await client.get("/api/items", params={"limit": 500, "offset": offset})).json()
            listed |= {i["id"] for i in page["items"]}
            offset += 500
            if offset >= page["total"]:
                break
        drain_deadline = time.monotonic() + 900
        states: dict[str, str] = {}
        while time.monotonic() < drain_deadline:
            states = {}
            offset = 0
            while True:
                page = (await client.get("/api/jobs", params={"limit": 500, "offset": offset})).json()
                states.update({j["id"]: j["state"] for j in page["jobs"]})
                offset += 500
                if offset >= page["total"]:
                    break
            if all(states.get(j) in ("succeeded", "failed", "cancelled", "interrupted") for j in submitted):
                break
            await asyncio.sleep(2)
    return {
        "clients": clients, "seconds": round(elapsed, 1),
        "requests": sum(len(v) for v in latencies.values()), "statuses": statuses,
        "server_errors": sum(n for code, n in statuses.items() if code >= 500),
        "no_answer": statuses.get(-1, 0),
        "uploads": len(uploaded), "lost_uploads": len(uploaded - listed),
        "jobs": len(submitted), "lost_jobs": len([j for j in submitted if j not in states]),
        "jobs_succeeded": sum(1 for j in submitted if states.get(j) == "succeeded"),
        "jobs_not_final": sum(1 for j in submitted if states.get(j) not in ("succeeded", "failed", "cancelled", "interrupted")),
        "latency_ms": {op: (round(1000 * statistics.median(v), 1) if v else None, round(1000 * percentile(v, 99), 1) if v else None, len(v))
                       for op, v in latencies.items()},
    }


def run_api_load(clients: int, seconds: float) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.compute.conftest import start_api

    with tempfile.TemporaryDirectory() as folder:
        server = start_api(Path(folder), "--workers", "2", env=_env())
        try:
            result = asyncio.run(api_load(server.base, server.token, clients, seconds))
            result["server_alive"] = server.process.poll() is None
            result["tracebacks_in_log"] = server.log().count("Traceback")
            return result
        finally:
            server.stop()


def session_processes(gateway_pid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == gateway_pid and b"slicer_cloud.viewer.session" in (entry / "cmdline").read_bytes():
                count += 1
        except OSError:
            continue
    return count


def run_viewer_burst(tabs: int = 20, cap: int = 4, retry_s: float = 300.0, start_timeout_s: float = 60.0) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_service

    with tempfile.TemporaryDirectory() as folder:
        service = start_service(
            ["view", "--data", folder, "--port", "0", "--token", "burst", "--no-open"], cwd=Path(folder),
            log_path=Path(folder) / "viewer.log",
            env={**_env(), "SLICER_CLOUD_MAX_SESSIONS": str(cap), "SLICER_CLOUD_SPARE_SESSIONS": "0",
                 "SLICER_CLOUD_SESSION_START_TIMEOUT_S": str(start_timeout_s)},
        )
        try:
            most = 0
            done = asyncio.Event()

            async def watch() -> None:
                nonlocal most
                while not done.is_set():
                    most = max(most, session_processes(service.process.pid))
                    await asyncio.sleep(0.1)

            retry_deadline = time.monotonic() + retry_s
            eventually: list[float] = []

            async def tab(client: httpx.AsyncClient) -> tuple[int, str | None, float]:
                """The first answer; a tab told to wait retries as told (bounded) until it is served."""
                start = time.monotonic()
                reply = await client.get(service.base, headers={"Authorization": "Bearer burst"}, follow_redirects=False)
                first = (reply.status_code, reply.headers.get("Retry-After"), time.monotonic() - start)
                while reply.status_code == 503 and time.monotonic() < retry_deadline:
                    await asyncio.sleep(min(float(reply.headers.get("Retry-After") or 5), 30))
                    reply = await client.get(service.base, headers={"Authorization": "Bearer burst"}, follow_redirects=False)
                if reply.status_code == 302:
                    eventually.append(time.monotonic() - start)
                return first

            async def burst():
                watcher = asyncio.ensure_future(watch())
                async with httpx.AsyncClient(timeout=300) as client:
                    results = await asyncio.gather(*(tab(client) for _ in range(tabs)), return_exceptions=True)
                done.set()
                await watcher
                return results

            results = asyncio.run(burst())
            codes = [r[0] if isinstance(r, tuple) else -1 for r in results]
            return {
                "tabs": tabs, "cap": cap, "most_session_processes": most,
                "served": codes.count(302), "told_to_wait": codes.count(503),
                "with_retry_after": sum(1 for r in results if isinstance(r, tuple) and r[0] == 503 and r[1]),
                "other": len([c for c in codes if c not in (302, 503)]),
                "slowest_s": round(max((r[2] for r in results if isinstance(r, tuple)), default=0), 1),
                "served_after_retries": len(eventually), "retry_bound_s": retry_s, "start_timeout_s": start_timeout_s,
                "last_served_s": round(max(eventually, default=0), 1),
                "gateway_alive": service.process.poll() is None,
            }
        finally:
            service.stop()
            log_tail = "\n".join(line for line in service.log().splitlines() if "session" in line)[-3000:]
            (ROOT / ".reliability-burst.log").write_text(log_tail) if os.environ.get("RELIABILITY_KEEP_LOG") else None


# --------------------------------------------------------------------------------------------
# faults


def run_faults() -> list[dict]:
    rows = []
    for fault, test in FAULT_TESTS:
        start = time.monotonic()
        completed = subprocess.run([sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
                                   cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
        tail = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
        rows.append({"fault": fault, "test": test, "passed": completed.returncode == 0, "summary": tail,
                     "seconds": round(time.monotonic() - start, 1)})
    return rows


# --------------------------------------------------------------------------------------------
# hostile input


def run_schemathesis(examples: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.compute.conftest import start_api
    from tests.compute.test_schema_fuzz import run_schemathesis as schema_run

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "data").mkdir()
        server = start_api(Path(folder) / "data", "--workers", "1", env=_env())
        try:
            report = schema_run(server.base, server.token, str(Path(folder) / "report.json"), examples=examples, max_time_s=900)
        finally:
            server.stop()
    return {
        "operations": report["operations"]["tested"], "of": report["operations"]["total"],
        "test_cases": report["test_cases"]["generated"], "failures": len(report["failures"]),
        "server_errors": sum(f["count"] for f in report["failures"] if f["code"] == "ST101"),
        "schema_violations": sum(f["count"] for f in report["failures"] if f["code"] != "ST101"),
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "seconds": round(report["running_time"], 1),
    }


def run_fuzzer(seconds: int, out: Path) -> list[dict]:
    from benchmarks.fuzz_seeds import write_seeds

    seeds = write_seeds(out / "seeds")
    rows = []
    for fmt, seed_dir in seeds.items():
        crashes = out / "crashes" / fmt
        crashes.mkdir(parents=True, exist_ok=True)
        work = out / "corpus" / fmt
        work.mkdir(parents=True, exist_ok=True)
        runs = 0
        coverage = 0
        safety_net = 0
        deadline = time.monotonic() + seconds
        restarts = 0
        while time.monotonic() < deadline - 5 and restarts < 20:  # restarted after each crash, bounded
            left = int(deadline - time.monotonic())
            completed = subprocess.run(
                [sys.executable, "-m", "benchmarks.fuzz_headers", fmt, str(work), f"-max_total_time={left}", "-timeout=10",
                 "-rss_limit_mb=2048", f"-artifact_prefix={crashes}/", "-print_final_stats=1", str(seed_dir)],
                cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=left + 300,
            )
            log = completed.stderr + completed.stdout
            runs += sum(int(n) for n in re.findall(r"stat::number_of_executed_units:\s+(\d+)", log))
            coverage = max([coverage, *[int(n) for n in re.findall(r"cov: (\d+)", log)]])
            safety_net += log.count("unforeseen header of")
            restarts += 1
            if completed.returncode == 0:
                break
        found = sorted(p.name for p in crashes.iterdir())
        rows.append({"reader": fmt, "seconds": seconds, "executions": runs, "coverage_edges": coverage,
                     "crashes": len(found), "crash_files": found, "safety_net_refusals": safety_net,
                     "seeds": len(list(seed_dir.iterdir()))})
    return rows


# --------------------------------------------------------------------------------------------
# the report


def machine() -> str:
    from benchmarks.report import machine_line

    return machine_line()


def write_doc(results: dict) -> None:
    lines = [
        "# Reliability: load, faults and hostile input",
        "",
        f"Measured by `python -m benchmarks.reliability`. {results['machine']} "
        f"Load average at the start: {results['load_average']} (the machine was shared: latencies are "
        "upper bounds, counts are exact).",
        "",
    ]
    load = results.get("api_load")
    if load:
        lines += [
            "## Load: the compute API",
            "",
            f"{load['clients']} concurrent clients for {load['seconds']} s, each looping: list items, upload a "
            "16x32x32 NRRD, submit a threshold job on it, read a 64-pixel slice render.",
            "",
            "| requests | 5xx | no answer | uploads | lost uploads | jobs | lost jobs | jobs not final | jobs succeeded |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {load['requests']} | {load['server_errors']} | {load['no_answer']} | {load['uploads']} | {load['lost_uploads']} | "
            f"{load['jobs']} | {load['lost_jobs']} | {load['jobs_not_final']} | {load['jobs_succeeded']} |",
            "",
            "| operation | count | p50 ms | p99 ms |",
            "|---|---|---|---|",
            *[f"| {op} | {n} | {p50} | {p99} |" for op, (p50, p99, n) in load["latency_ms"].items()],
            "",
            f"Status codes: {json.dumps(load['statuses'])}; server alive after: {load['server_alive']}; "
            f"tracebacks in its log: {load['tracebacks_in_log']}.",
            "",
        ]
    burst = results.get("viewer_burst")
    if burst:
        lines += [
            "## Load: viewer tabs at once",
            "",
            f"{burst['tabs']} `GET /` at the same instant with the cap at {burst['cap']} sessions (no spares), "
            f"session start timeout {burst.get('start_timeout_s', 60)} s.",
            "",
            "| most session processes | served at once | told to wait (503) | with Retry-After | other | slowest first answer s "
            "| served after retrying (bound) | last served s | gateway alive |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {burst['most_session_processes']} | {burst['served']} | {burst['told_to_wait']} | {burst['with_retry_after']} | "
            f"{burst['other']} | {burst['slowest_s']} | {burst.get('served_after_retries')} of {burst['tabs']} ({burst.get('retry_bound_s')} s) | "
            f"{burst.get('last_served_s')} | {burst['gateway_alive']} |",
            "",
        ]
    faults = results.get("faults")
    if faults:
        lines += ["## Faults (kill -9)", "", "| process killed | test | result | s |", "|---|---|---|---|"]
        lines += [f"| {r['fault']} | `{r['test']}` | {'passed' if r['passed'] else 'FAILED'} ({r['summary']}) | {r['seconds']} |" for r in faults]
        lines += ["", f"{sum(r['passed'] for r in faults)} of {len(faults)} passed.", ""]
    schema = results.get("schemathesis")
    if schema:
        lines += [
            "## Hostile input: schemathesis over the OpenAPI document",
            "",
            "| operations tested | test cases | 5xx | schema violations | phases | s |",
            "|---|---|---|---|---|---|",
            f"| {schema['operations']} of {schema['of']} | {schema['test_cases']} | {schema['server_errors']} | "
            f"{schema['schema_violations']} | {', '.join(f'{k} {v}' for k, v in schema['phases'].items())} | {schema['seconds']} |",
            "",
        ]
    fuzz = results.get("fuzz")
    if fuzz:
        lines += [
            "## Hostile input: coverage-guided fuzzing of the header readers (atheris)",
            "",
            "Each reader through `inspect_image`, the check every entry point runs; a refusal is the right "
            "answer, anything else a crash. Seeds: a sound file and the corpus cases of each format. "
            "Safety-net refusals: inputs refused by the catch-all of `inspect_image` (a reason in words, "
            "the exception in the log) rather than by a reader's own check.",
            "",
            "| reader | seconds | executions | coverage (edges) | crashes | safety-net refusals | seeds |",
            "|---|---|---|---|---|---|---|",
            *[f"| {r['reader']} | {r['seconds']} | {r['executions']} | {r['coverage_edges']} | {r['crashes']} | "
              f"{r['safety_net_refusals']} | {r['seeds']} |" for r in fuzz],
            "",
        ]
    lines += [results.get("notes", ""), ""]
    DOC.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--fuzz-seconds", type=int, default=60)
    parser.add_argument("--schema-examples", type=int, default=30)
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--session-start-timeout", type=float, default=60.0, help="the viewer's, for the tabs burst (a busy machine needs more)")
    parser.add_argument("--only", choices=["load", "burst", "faults", "schema", "fuzz"], action="append")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, action="append", help="merge results of earlier runs (parts run apart) and write the page")
    args = parser.parse_args()
    if args.from_json:
        merged: dict = {}
        for path in args.from_json:
            merged.update(json.loads(path.read_text()))
        write_doc(merged)
        return
    only = set(args.only or ["load", "burst", "faults", "schema", "fuzz"])
    if args.skip_faults:
        only.discard("faults")
    results: dict = {"machine": machine(), "date": dt.date.today().isoformat(), "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    if "fuzz" in only:
        with tempfile.TemporaryDirectory() as folder:
            results["fuzz"] = run_fuzzer(args.fuzz_seconds, Path(folder))
        print(json.dumps(results["fuzz"], indent=1), flush=True)
    if "schema" in only:
        results["schemathesis"] = run_schemathesis(args.schema_examples)
        print(json.dumps(results["schemathesis"], indent=1), flush=True)
    if "load" in only:
        results["api_load"] = run_api_load(args.clients, args.load_seconds)
        print(json.dumps(results["api_load"], indent=1), flush=True)
    if "burst" in only:
        results["viewer_burst"] = run_viewer_burst(start_timeout_s=args.session_start_timeout)
        print(json.dumps(results["viewer_burst"], indent=1), flush=True)
    if "faults" in only:
        results["faults"] = run_faults()
        print(json.dumps(results["faults"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    write_doc(results)


if __name__ == "__main__":
    main()
