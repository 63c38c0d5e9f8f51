"""Synthetic forum topics in Discourse's ``/t/{id}.json`` shape, written for these tests (no forum
content), and a loopback HTTP server that answers like Discourse's JSON API."""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def post(number: int, username: str, html: str, created: str = "2021-03-04T10:00:00.000Z", **extra) -> dict:
    return {"post_number": number, "username": username, "created_at": created, "cooked": html, **extra}


def topic(topic_id: int, title: str, posts: list[dict], created: str = "2021-03-04T10:00:00.000Z", **extra) -> dict:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return {
        "id": topic_id,
        "title": title,
        "slug": slug,
        "created_at": created,
        "bumped_at": extra.pop("bumped_at", created),
        "posts_count": len(posts),
        "post_stream": {"posts": posts},
        **extra,
    }


def synthetic_topics() -> list[dict]:
    """A small forum: one topic per approach, look-alikes, an unanswered one and a notice."""
    return [
        topic(101, "Black screen when I open Slicer over VNC on our lab server", [
            post(1, "ana", "<p>I start Slicer in a TigerVNC session on the Ubuntu server and connect from my laptop. "
                           "The slice views stay black and the log says <code>failed to create OpenGL context</code>.</p>"),
            post(2, "helper", '<p>Run it through VirtualGL: <code>vglrun ./Slicer</code>, see '
                              '<a href="https://virtualgl.org/Documentation/">the VirtualGL docs</a>.</p>'),
            post(3, "ana", "<p>Thanks, that works now.</p>"),
        ], created="2019-05-02T08:00:00.000Z"),
        topic(102, "Batch segmentation on the cluster without a display", [
            post(1, "ben", "<p>We submit jobs with SLURM on our HPC cluster. Slicer stops with "
                           "<code>cannot connect to X server</code>. How do we run a Python script headless?</p>"),
            post(2, "helper", '<p>Use <code>xvfb-run</code> or a Singularity image; the '
                              '<a href="https://github.com/Slicer/SlicerDocker/tree/main">Slicer docker files</a> show how.</p>'),
        ], created="2021-06-10T08:00:00.000Z"),
        topic(103, "Slicer Jupyter kernel dies when the notebook starts", [
            post(1, "cy", "<p>I installed SlicerJupyter and picked the Slicer kernel in JupyterLab, "
                          "but the kernel died right away with a timeout waiting for kernel_info.</p>"),
            post(2, "helper", '<p>Try the Binder example first: <a href="https://mybinder.org/v2/gh/Slicer/SlicerNotebooks/master">'
                              "SlicerNotebooks on Binder</a>.</p>"),
        ], created="2022-01-15T08:00:00.000Z"),
        topic(104, "A web application for segmentation in the browser", [
            post(1, "dee", "<p>We want surgeons to segment in a web browser, without installing anything. "
                           "Can Slicer be used in a web-based application, maybe with trame or vtk.js?</p>"),
            post(2, "helper", '<p>Have a look at <a href="https://github.com/KitwareMedical/trame-slicer">trame-slicer</a>.</p>'),
        ], created="2025-02-01T08:00:00.000Z"),
        topic(105, "Build error: ITK remote module missing in my extension", [
            post(1, "ed", "<p>The superbuild fails because an ITK remote module is not enabled. "
                          "The remote repository of the module was not cloned.</p>"),
            post(2, "helper", "<p>Turn the remote module on in the ITK configuration.</p>"),
        ], created="2020-03-01T08:00:00.000Z"),
        topic(106, "PLUS server does not send tracker data", [
            post(1, "fay", "<p>The PLUS server starts but Slicer's OpenIGTLink server connection stays red.</p>"),
        ], created="2023-09-09T08:00:00.000Z"),
        topic(107, "How do I smooth a segmentation?", [
            post(1, "gus", "<p>The surface looks blocky. Which effect smooths it?</p>"),
            post(2, "helper", "<p>Use the Smoothing effect in the Segment Editor.</p>"),
        ], created="2024-04-04T08:00:00.000Z"),
        topic(108, "Project week preparation meeting tomorrow", [
            post(1, "org", "<p>Topics: web and cloud, vtk.js and OHIF demos. Join the Zoom meeting.</p>"),
        ], created="2024-11-11T08:00:00.000Z"),
        topic(109, "Remote desktop through x2go freezes on large volumes", [
            post(1, "hal", "<p>Using Slicer through X2Go on a remote machine, the GUI freezes when I load a large CT.</p>"),
        ], created="2026-01-20T08:00:00.000Z"),
        topic(110, "Export a point cloud from a model", [
            post(1, "ivy", '<p>How do I save the point cloud? I read <a href="https://slicer.readthedocs.io/en/latest/user_guide/modules/models.html">the docs</a>.</p>'),
        ], created="2018-08-08T08:00:00.000Z"),
    ]


def write_archive(path: Path, topics: list[dict], *, extra_lines: list[str] = ()) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for item in topics:
            handle.write(json.dumps(item) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return path


@dataclass
class FakeDiscourse:
    """Answers /latest.json, /search.json and /t/{id}.json like Discourse, from ``topics``.

    ``throttle``: paths whose first request gets ``429`` with ``Retry-After``. Every request is
    recorded in ``requests`` (path and query) with its arrival time."""

    topics: dict[int, dict]
    page_size: int = 4
    throttle: dict[str, int] = field(default_factory=dict)  # path -> Retry-After seconds (first request only)
    always_429: bool = False
    requests: list[tuple[float, str, dict]] = field(default_factory=list)
    missing: set[int] = field(default_factory=set)  # listed but answering 404

    def listing(self) -> list[dict]:
        ordered = sorted(self.topics.values(), key=lambda t: t["bumped_at"], reverse=True)
        return [{k: t[k] for k in ("id", "title", "slug", "created_at", "bumped_at", "posts_count")} for t in ordered]

    def search(self, query: str) -> list[dict]:
        words = re.sub(r"\b(?:after|before):\S+", "", query).strip().lower()
        hits = []
        for item in self.listing():
            body = self.topics[item["id"]]
            text = (body["title"] + " " + " ".join(p["cooked"] for p in body["post_stream"]["posts"])).lower()
            if words and words in text:
                hits.append(item)
        return hits


def serve(fake: FakeDiscourse):
    import time

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet test output
            pass

        def _json(self, status: int, body: object, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            fake.requests.append((time.monotonic(), parts.path, query))
            if fake.always_429:
                return self._json(429, {"errors": ["slow down"]}, {"Retry-After": "3600"})
            if parts.path in fake.throttle:
                return self._json(429, {"errors": ["slow down"]}, {"Retry-After": str(fake.throttle.pop(parts.path))})
            if parts.path == "/latest.json":
                page = int(query.get("page", 0))
                items = fake.listing()
                chunk = items[page * fake.page_size : (page + 1) * fake.page_size]
                more = (page + 1) * fake.page_size < len(items)
                listing = {"topics": chunk, **({"more_topics_url": f"/latest?page={page + 1}"} if more else {})}
                return self._json(200, {"users": [], "topic_list": listing})
            if parts.path == "/search.json":
                page = int(query.get("page", 1))
                hits = fake.search(query.get("q", ""))
                chunk = hits[page - 1 : page]  # one per page: pagination is exercised
                more = page < len(hits)
                return self._json(200, {"posts": [], "topics": chunk, "grouped_search_result": {"more_full_page_results": more or None}})
            match = re.fullmatch(r"/t/(\d+)\.json", parts.path)
            if match and int(match.group(1)) in fake.topics and int(match.group(1)) not in fake.missing:
                return self._json(200, fake.topics[int(match.group(1))])
            return self._json(404, {"errors": ["not found"]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
