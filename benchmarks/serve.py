"""Benchmark of the all-in-one server (`slicer-cloud serve`) and the hub (`slicer-cloud hub`).

Measures on loopback, in real headless Chromium where a page is involved:

* page open to the first slice image in the viewer, through Jupyter's proxy
  (``/slicer-viewer/?open=...``) and from the viewer alone (``slicer-cloud view``): the proxy's
  cost; the same for one small HTTP request (the API's health check), many times;
* resident memory of the single-user server's process tree: Jupyter alone, then with the viewer
  (one tab open) and the compute API started;
* the hub (JupyterHub + its proxy) with 1 and 5 users' servers running, and all their trees.

Run: ``.venv/bin/python -m benchmarks.serve [--runs 3] [--users 5]``. Writes its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.report import machine_line, markdown_table, write_section
from slicer_cloud.core.phantom import make_phantom, write_nrrd
from slicer_cloud.desktop import proctree
from slicer_cloud.web.serving import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "benchmark-token"
VIEW_IMAGES = "img.image-display-area"
IMAGE_SHOWN_JS = """(sel) => [...document.querySelectorAll(sel)].some(im => {
  if (!im.complete || !im.naturalWidth) return false;
  const c = document.createElement('canvas'); c.width = 32; c.height = 32;
  const g = c.getContext('2d'); g.drawImage(im, 0, 0, 32, 32);
  const d = g.getImageData(0, 0, 32, 32).data; let lo = 255, hi = 0;
  for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
  return hi - lo > 40;
})"""


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> tuple[subprocess.Popen, str, Path]:
    """``slicer-cloud ARGS`` until its ``Serving on URL`` line; output goes to a log file."""
    log = cwd / f"{args[0]}-{time.monotonic_ns()}.log"
    process = subprocess.Popen([sys.executable, "-m", "slicer_cloud.cli", *args], cwd=cwd, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(r"^Serving on (\S+)", log.read_text(errors="replace"), re.M)
        if match:
            return process, match.group(1), log
        if process.poll() is not None:
            break
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"slicer-cloud {' '.join(args)} did not start:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    tree = [info.pid for info in proctree.descendants(process.pid)]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in tree:
        if proctree.read_proc(pid) is not None:
            os.kill(pid, signal.SIGKILL)


def tree_mib(pid: int) -> float:
    return sum(info.rss_bytes for info in proctree.tree_memory(pid)) / 1024**2


SETTLE_S = 15.0  # before each timed run: the viewer's spare session is ready, as for a user who just arrived


def hub_mib(pid: int) -> float:
    """JupyterHub itself and its proxy (node), without the culler and the users' servers."""
    head = proctree.read_proc(pid)
    proxy = sum(info.rss_bytes for info in proctree.descendants(pid) if info.name.startswith("node"))
    return ((head.rss_bytes if head else 0) + proxy) / 1024**2


def first_slice_s(browser, url: str, login_url: str | None = None, keep: list | None = None) -> float:
    """Seconds from opening ``url`` to a slice image on the page (a fresh browser context each
    time). With ``keep``, the context stays open (appended to it) instead of closing."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        if login_url:
            page.goto(login_url)  # Jupyter's cookie, as after opening the printed URL
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(IMAGE_SHOWN_JS, arg=VIEW_IMAGES, timeout=180_000, polling=100)
        return time.perf_counter() - started
    finally:
        if keep is None:
            context.close()
        else:
            keep.append(context)


def timed_runs(browser, url: str, runs: int, login_url: str | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        time.sleep(SETTLE_S)
        times.append(first_slice_s(browser, url, login_url))
    return times


def request_ms(url: str, headers: dict[str, str], count: int = 50) -> float:
    with requests.Session() as session:
        session.headers.update(headers)
        session.get(url, timeout=60).raise_for_status()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            session.get(url, timeout=60).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_serve(browser, tmp: Path, runs: int) -> tuple[list[list[object]], list[list[object]]]:
    data = tmp / "data"
    data.mkdir()
    phantom = make_phantom(shape=(192, 192, 96), spacing=(1.5, 1.5, 3.0))
    write_nrrd(data / "ct.nrrd", phantom.array, phantom.spacing, phantom.origin)
    env = {"SLICER_CLOUD_SPARE_SESSIONS": "1", "JUPYTER_CONFIG_DIR": str(tmp / "jcfg"), "JUPYTER_RUNTIME_DIR": str(tmp / "jrun")}
    timing_rows: list[list[object]] = []
    memory_rows: list[list[object]] = []

    port = free_port()
    serve, _, _ = start(["serve", "--data", str(data), "--port", str(port), "--token", TOKEN, "--no-open"], tmp, env)
    root = f"http://127.0.0.1:{port}/"
    try:
        time.sleep(3)
        memory_rows.append(["single-user server (Jupyter + extension), idle", f"{tree_mib(serve.pid):.0f}"])
        login = root + f"slicer/files?token={TOKEN}"  # logs in without the portal page (which starts the API)
        opened: list = []
        first = first_slice_s(browser, root + "slicer-viewer/?open=ct.nrrd", login, keep=opened)
        timing_rows.append(["through the proxy, first use (viewer started by it)", f"{first:.2f}", "1"])
        time.sleep(SETTLE_S)
        memory_rows.append(["+ viewer (one tab open, one spare session)", f"{tree_mib(serve.pid):.0f}"])
        auth = {"Authorization": f"token {TOKEN}"}
        proxied_ms = request_ms(root + "slicer-viewer/api/health", auth)
        request_ms(root + "slicer-api/api/health", auth, count=1)
        memory_rows.append(["+ compute API", f"{tree_mib(serve.pid):.0f}"])
        for context in opened:
            context.close()
        proxied = timed_runs(browser, root + "slicer-viewer/?open=ct.nrrd", runs, login)
    finally:
        stop(serve)

    viewer, url, _ = start(["view", "--data", str(data), "--port", "0", "--token", TOKEN, "--no-open"], tmp, env)
    try:
        base = url.split("?", 1)[0]
        alone = timed_runs(browser, f"{base}?token={TOKEN}&open=ct.nrrd", runs)
        alone_ms = request_ms(base + "api/health", {"Authorization": f"Bearer {TOKEN}"})
    finally:
        stop(viewer)
    timing_rows.append(["through the proxy, viewer running", f"{statistics.median(proxied):.2f}", str(runs)])
    timing_rows.append(["viewer alone (slicer-cloud view)", f"{statistics.median(alone):.2f}", str(runs)])
    timing_rows.append(["proxy's cost on the first slice", f"{statistics.median(proxied) - statistics.median(alone):+.2f}", ""])
    request_rows = [["viewer health check through the proxy (ms)", f"{proxied_ms:.1f}", "50"],
                    ["viewer health check, alone (ms)", f"{alone_ms:.1f}", "50"]]
    return timing_rows + request_rows, memory_rows


def bench_hub(tmp: Path, users: int) -> list[list[object]]:
    config = tmp / "hub_config.py"
    names = [f"user{n}" for n in range(1, users + 1)]
    config.write_text(
        'c.JupyterHub.authenticator_class = "dummy"\n'
        'c.DummyAuthenticator.password = "bench"\n'
        f"c.Authenticator.allowed_users = {set(names)!r}\n"
        'c.JupyterHub.spawner_class = "slicer_cloud.hub.spawners.SlicerCloudDemoSpawner"\n'
        f'c.SlicerCloudDemoSpawner.home_dir_template = "{tmp}/users/{{username}}"\n'
        'c.Spawner.environment = {"SLICER_CLOUD_SPARE_SESSIONS": "0"}\n'
    )
    port = free_port()
    hub, _, _ = start(["hub", "--port", str(port), "--config", str(config), "--state", str(tmp / "hub-state")], tmp)
    root = f"http://127.0.0.1:{port}/"
    rows: list[list[object]] = []
    try:
        time.sleep(3)
        rows.append(["no user", f"{hub_mib(hub.pid):.0f}", f"{tree_mib(hub.pid):.0f}"])
        for count, name in enumerate(names, start=1):
            session = requests.Session()
            session.get(root + "hub/login", timeout=30)
            session.post(root + "hub/login", data={"username": name, "password": "bench", "_xsrf": session.cookies.get("_xsrf")}, timeout=300)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and session.get(f"{root}user/{name}/slicer/", timeout=60).status_code != 200:
                time.sleep(1)
            if count in (1, users):
                time.sleep(2)
                rows.append([f"{count} user{'s' if count > 1 else ''} (portal open, services not started)",
                             f"{hub_mib(hub.pid):.0f}", f"{tree_mib(hub.pid):.0f}"])
    finally:
        stop(hub)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="slicer-cloud-bench-serve-") as folder, sync_playwright() as playwright:
        tmp = Path(folder)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            timings, memory = bench_serve(browser, tmp, args.runs)
        finally:
            browser.close()
        hub_rows = bench_hub(tmp, args.users)
    load = os.getloadavg()[0]
    body = "\n\n".join([
        "## All-in-one server and hub (`python -m benchmarks.serve`)",
        machine_line() + f" Load average at the end: {load:.1f}.",
        f"Page open to the first slice image (192x192x96 CT, a new tab each run, {SETTLE_S:.0f} s apart so a spare session is ready; median), and one small request:",
        markdown_table(["what", "seconds (or ms)", "runs"], timings),
        "Resident memory of the single-user server's process tree (MiB):",
        markdown_table(["state", "MiB"], memory),
        "The hub with the demo spawner (MiB; hub: JupyterHub and configurable-http-proxy; the tree adds the idle culler and the users' servers):",
        markdown_table(["users", "hub MiB", "whole tree MiB"], hub_rows),
    ])  # fmt: skip
    write_section("serve", body)
    print(body)


if __name__ == "__main__":
    main()
