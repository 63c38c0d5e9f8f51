"""What runs for this user behind the Jupyter Server: the viewer (and its tabs), the desktop and
the compute API that jupyter-server-proxy started, with their memory and CPU, and a way to stop
one. ``GET slicer/running`` lists them; ``POST slicer/running/NAME/stop`` ends one (its whole
process tree); the next visit to its URL starts it again.

jupyter-server-proxy keeps each service's process in a per-service state dict, handed to its
URL handler; the state is found through the web application's routes, and cleared after a stop
so that the proxy starts a fresh process on the next request.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import psutil
from jupyter_server.base.handlers import APIHandler
from tornado import web

from slicer_cloud.jupyter.proxy import SERVICES

CPU_SAMPLE_S = 0.3
HEALTH_TIMEOUT_S = 2.0


def _rules(router: Any) -> list:
    """Every routing rule under ``router``, nested host routers included."""
    found = []
    for rule in getattr(router, "rules", []):
        found.append(rule)
        if hasattr(rule.target, "rules"):
            found.extend(_rules(rule.target))
    return found


def proxy_states(web_app: Any) -> dict[str, dict]:
    """Service name (``slicer-viewer``...) -> jupyter-server-proxy's state dict for it."""
    states: dict[str, dict] = {}
    for rule in _rules(web_app.default_router) + _rules(web_app.wildcard_router):
        kwargs = getattr(rule, "target_kwargs", None) or {}
        regex = getattr(rule.matcher, "regex", None)
        if "state" not in kwargs or regex is None:
            continue
        pattern = regex.pattern.replace("\\", "")
        for name in SERVICES:
            if f"/{name}/" in pattern:
                states[name] = kwargs["state"]
    return states


def _alive_process(state: dict) -> Any | None:
    proc = state.get("proc")
    return proc if getattr(proc, "running", False) and getattr(proc, "pid", None) else None


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def measure(pid: int) -> dict:
    """Memory (resident, whole tree) and CPU (percent of one core, over a short sample)."""
    processes = _tree(pid)
    before = {}
    for process in processes:
        try:
            before[process.pid] = sum(process.cpu_times()[:2])
        except psutil.Error:
            pass
    time.sleep(CPU_SAMPLE_S)
    cpu = memory = 0.0
    sessions = 0
    for process in processes:
        try:
            with process.oneshot():
                cpu += sum(process.cpu_times()[:2]) - before.get(process.pid, 0.0)
                memory += process.memory_info().rss
                if "slicer_cloud.viewer.session" in " ".join(process.cmdline()):
                    sessions += 1
        except psutil.Error:
            continue
    started = processes[0].create_time() if processes else time.time()
    return {
        "memory_bytes": int(memory),
        "cpu_percent": round(100.0 * cpu / CPU_SAMPLE_S, 1),
        "processes": len(processes),
        "session_processes": sessions,
        "started": started,
    }


def viewer_tabs(port: int, prefix: str) -> int | None:
    """Tabs with a session, from the viewer's own health page (no token needed there); the
    viewer serves under its full public prefix."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{prefix}api/health", timeout=HEALTH_TIMEOUT_S) as response:
            return int(json.load(response).get("sessions", 0))
    except (OSError, ValueError):
        return None


def describe(name: str, state: dict, base_url: str = "/") -> dict:
    title = SERVICES[name][0]
    proc = _alive_process(state)
    entry: dict[str, Any] = {"name": name, "title": title, "running": proc is not None}
    if proc is not None:
        entry.update(measure(proc.pid))
        if name == "slicer-viewer" and isinstance(state.get("port"), int):
            entry["tabs"] = viewer_tabs(state["port"], f"{base_url}{name}/")
    return entry


class RunningList(APIHandler):
    """``GET slicer/running``"""

    @web.authenticated
    async def get(self) -> None:
        states = proxy_states(self.serverapp.web_app)
        loop = asyncio.get_running_loop()
        services = await asyncio.gather(
            *(loop.run_in_executor(None, describe, name, states.get(name, {}), self.base_url) for name in SERVICES)
        )
        self.finish({"services": list(services)})


class RunningStop(APIHandler):
    """``POST slicer/running/NAME/stop``: end the service's process tree."""

    @web.authenticated
    async def post(self, name: str) -> None:
        if name not in SERVICES:
            raise web.HTTPError(404, f"No service named {name}.")
        state = proxy_states(self.serverapp.web_app).get(name)
        if state is None or _alive_process(state) is None:
            raise web.HTTPError(409, f"{SERVICES[name][0]} is not running.")
        lock = state.get("proc_lock")
        async with lock if lock is not None else _NoLock():
            proc = _alive_process(state)
            if proc is not None:
                await proc.terminate()  # SIGTERM: the service stops its own children cleanly
                state.pop("proc", None)  # the next request to its URL starts a new one
        self.log.info("stopped %s at the user's request", name)
        self.finish({"name": name, "running": False})


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
