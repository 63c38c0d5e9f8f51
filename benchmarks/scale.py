"""Scaling past one machine, measured here: ``python -m benchmarks.scale`` (root: it starts a
single-node SLURM of its own, as the tests do).

* A batch of 16 volumes through one module with ``slicer-cloud run``'s engines in one run: the
  local pool with 1 and 2 workers, a Dask LocalCluster of 2 workers, SLURM with at most 2 worker
  jobs (adaptive, from none): wall time, speed-up over one local worker, and each engine's cost
  per job beyond the module's own process.
* The hub with the SLURM profile: a user's login in Chromium to the viewer's first image (the
  server starts as a SLURM job), and the memory and CPU of that user's job tree, idle and with
  the viewer open (for the capacity model in docs/scale.md).

Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import machine_line, markdown_table, write_section
from benchmarks.serve import CHROMIUM, CHROMIUM_ARGS, IMAGE_SHOWN_JS, VIEW_IMAGES, free_port, start, stop
from slicer_cloud.compute.imageio import Volume, write_volume
from slicer_cloud.desktop import proctree
from tests.slurm import Slurm, running_slurm

CASES = 16
SHAPE = (64, 160, 160)  # z, y, x int16: about a second of smoothing per case here
MODULE, SETTINGS = "gaussian_smoothing", ["sigma=1.5"]
USER, PASSWORD = "alice", "benchmark-password"


def make_inputs(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for n in range(CASES):
        array = rng.normal(0, 200, SHAPE).astype(np.int16)
        write_volume(folder / f"case{n:02d}.nrrd", Volume(array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0)))


def batch(engine: str, workers: int, inputs: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, mean seconds of one module process, succeeded cases)"""
    from slicer_cloud.compute.batch import run_batch

    started = time.perf_counter()
    cases = run_batch(MODULE, [str(inputs)], sets=SETTINGS, out=out, engine=engine, workers=workers, quiet=True)
    wall = time.perf_counter() - started
    done = [c for c in cases if c.state == "succeeded"]
    return wall, sum(c.seconds for c in done) / max(1, len(done)), len(done)


def batch_rows(slurm: Slurm, work: Path) -> list[list[object]]:
    inputs = work / "inputs"
    make_inputs(inputs)
    os.environ.update({**slurm.env, "SLICER_CLOUD_SLURM_LOG_DIRECTORY": str(work / "slurm-logs"),
                       "SLICER_CLOUD_SLURM_SHARED_DIRECTORY": str(work / "slurm-shared"),
                       "SLICER_CLOUD_SLURM_RESOURCES": '{"memory": "2GiB", "walltime": "00:30:00"}'})
    results = {}
    for name, engine, workers in (("local pool, 1 worker", "local", 1), ("local pool, 2 workers", "local", 2),
                                  ("Dask LocalCluster, 2 workers", "dask", 2), ("SLURM, 2 worker jobs", "slurm", 2)):
        results[name] = (workers, *batch(engine, workers, inputs, work / f"out-{engine}-{workers}"))
        print(name, results[name], flush=True)
    base = results["local pool, 1 worker"][1]
    rows = []
    for name, (workers, wall, module_s, ok) in results.items():
        overhead = wall * workers / CASES - module_s  # a worker's time per job not spent in the module's process
        rows.append([name, f"{ok}/{CASES}", f"{wall:.1f} s", f"{base / wall:.2f}x", f"{module_s:.2f} s",
                     f"{overhead:+.2f} s", f"{CASES / wall * 60 / workers:.0f}"])
    return rows


def job_tree(marker: bytes) -> int | None:
    """The PID of the user's server (the SLURM job's batchspawner wrapper)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    return int(entry)
            except OSError:
                continue
    return None


def tree_usage(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds so far) of a process and everything below it."""
    pids = [pid, *(info.pid for info in proctree.descendants(pid))]
    rss = cpu = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for each in pids:
        info = proctree.read_proc(each)
        if info is None:
            continue
        rss += info.rss_bytes
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return rss / 1024**2, cpu


def idle_cpu_percent(pid: int, seconds: float = 20.0) -> float:
    _, before = tree_usage(pid)
    time.sleep(seconds)
    _, after = tree_usage(pid)
    return (after - before) / seconds * 100


def hub_rows(slurm: Slurm, work: Path) -> list[list[object]]:
    from playwright.sync_api import sync_playwright

    from tests.hub.test_hub_slurm import CONFIG, SLURM_CONFIG
    from tests.jupyter.conftest import write_volume as write_ct

    users = work / "users"
    write_ct(users / USER, "ct.nrrd")
    config = work / "hub_config.py"
    config.write_text(CONFIG.format(slurm=str(SLURM_CONFIG), password=PASSWORD, user=USER, home=str(users / "{username}"),
                                    node=socket.gethostname(), config_dir=str(work / "jupyter-config")))
    port = free_port()
    hub, _, _ = start(["hub", "--port", str(port), "--config", str(config), "--state", str(work / "state")], work,
                      env={**slurm.env, "SLICER_CLOUD_HUB_CULL": "false"})
    root = f"http://127.0.0.1:{port}/"
    rows: list[list[object]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
            page.goto(root + "hub/login")
            page.fill("#username_input", USER)
            page.fill("#password_input", PASSWORD)
            started = time.perf_counter()
            page.click("#login_submit")
            page.wait_for_selector("input[name=cores]", timeout=120_000)  # the spawn form
            page.fill("input[name=cores]", "2")
            page.fill("input[name=memory_gib]", "4")
            page.click("button[type=submit]")  # Start
            page.wait_for_url(f"**/user/{USER}/slicer/**", timeout=600_000)
            page.wait_for_selector("#link-api", state="attached", timeout=120_000)
            portal_s = time.perf_counter() - started
            server = job_tree(b"batchspawner-singleuser")
            assert server is not None, "the user's server is not running on this node"
            time.sleep(5)  # settled
            idle_mib, _ = tree_usage(server)
            idle_cpu = idle_cpu_percent(server)
            opened = time.perf_counter()
            page.goto(f"{root}user/{USER}/slicer-viewer/?open=ct.nrrd")
            page.wait_for_function(IMAGE_SHOWN_JS, arg=VIEW_IMAGES, timeout=300_000, polling=100)
            image_s = time.perf_counter() - opened
            time.sleep(5)
            viewer_mib, _ = tree_usage(server)
            viewer_cpu = idle_cpu_percent(server)
            rows += [
                ["login to the portal (form submitted, server started as a SLURM job)", f"{portal_s:.1f} s"],
                ["portal to the viewer's first image (viewer started on first use)", f"{image_s:.1f} s"],
                ["**login to the viewer's first image**", f"**{portal_s + image_s:.1f} s**"],
                ["idle user: the job's process tree, portal open", f"{idle_mib:.0f} MiB"],
                ["idle user: its CPU over 20 s", f"{idle_cpu:.1f} % of a core"],
                ["same job with one viewer tab open (no spare session)", f"{viewer_mib:.0f} MiB"],
                ["its CPU with the tab open, untouched, over 20 s", f"{viewer_cpu:.1f} % of a core"],
            ]
            browser.close()
        jobs = slurm.jobs()
        rows.append(["SLURM jobs of the hub's users", str(len(jobs))])
    finally:
        stop(hub)
        for job in slurm.jobs():
            slurm.command("scancel", job["id"])
    return rows


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="slicer-cloud-bench-scale-") as tmp, running_slurm() as slurm:
        work = Path(tmp)
        batch_table = batch_rows(slurm, work / "batch")
        hub_table = hub_rows(slurm, work / "hub")
    load_after = os.getloadavg()[0]
    body = "\n\n".join([
        "## Past one machine: SLURM (`python -m benchmarks.scale`)",
        f"{machine_line()} Load average: {load_before:.1f} at the start, {load_after:.1f} at the end "
        "(other work shares the 2 cores; multi-worker rows suffer most). SLURM: Debian's slurm-wlm 22.05, "
        "one node (this machine), started by the benchmark.",
        f"A batch of {CASES} volumes ({SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} int16) through `{MODULE}` "
        f"({' '.join(SETTINGS)}) with `slicer-cloud run`, every engine in this one run. Wall time includes "
        "starting the engine (a LocalCluster; for SLURM the scheduler and the worker jobs, adaptive from none). "
        "*Overhead per job*: a worker's time per job beyond the module's own process (wall x workers / jobs - "
        "module time). *Jobs/min per worker*: the throughput to size workers with.",
        markdown_table(["engine", "succeeded", "wall", "speed-up", "module process (mean)", "overhead per job",
                        "jobs/min per worker"], batch_table),
        "The hub with the SLURM profile (`examples/hub/slurm_config.py`, demo login, jobs as the hub's account): "
        "Chromium logs in, submits the spawn form (2 cores, 4 GiB), waits for the portal, then opens the viewer "
        "on a 192x192x96 CT.",
        markdown_table(["what", "measured"], hub_table),
    ])
    write_section("scale", body)
    print(body)


if __name__ == "__main__":
    main()
