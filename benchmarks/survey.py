"""Benchmark of the forum survey: `slicer-cloud survey --archive ... --out DIR` on the whole archive.

Runs the real command as a subprocess, ``--runs`` times, and records its wall time, the CPU time
it used (user + system, all its processes), its peak memory, and the machine's load average while
it ran (the machine may be shared: CPU time tells the work, wall time what a user waits).

Run: ``.venv/bin/python -m benchmarks.survey [--archive PATH] [--runs 2]``. The archive defaults
to ``shared/forum/slicer-discourse-topics.jsonl.gz`` in a folder above the repository or to
``SLICER_CLOUD_FORUM_ARCHIVE``. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import machine_line, markdown_table, write_section

REPO = Path(__file__).resolve().parents[1]
ARCHIVE_NAME = Path("shared/forum/slicer-discourse-topics.jsonl.gz")


def default_archive() -> Path | None:
    if os.environ.get("SLICER_CLOUD_FORUM_ARCHIVE"):
        return Path(os.environ["SLICER_CLOUD_FORUM_ARCHIVE"])
    return next((folder / ARCHIVE_NAME for folder in REPO.parents if (folder / ARCHIVE_NAME).is_file()), None)


def run_once(archive: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "slicer_cloud.cli", "survey", "--archive", str(archive), "--out", out],
            capture_output=True, text=True, timeout=1800,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )  # fmt: skip
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"survey failed: {result.stderr[-2000:]}")
        sizes = {name: (Path(out) / name).stat().st_size for name in ("topics.csv", "report.html")}
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rss_mib": after.ru_maxrss / 1024,
        "load": (load + os.getloadavg()[0]) / 2,
        "summary": result.stdout.splitlines()[0],
        "sizes": sizes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=default_archive())
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if args.archive is None or not args.archive.is_file():
        raise SystemExit("no forum archive: pass --archive PATH or set SLICER_CLOUD_FORUM_ARCHIVE")
    runs = [run_once(args.archive) for _ in range(args.runs)]
    rows = [
        [i + 1, f"{r['wall']:.0f}", f"{r['cpu']:.0f}", f"{r['load']:.1f}", f"{r['rss_mib']:.0f}"] for i, r in enumerate(runs)
    ]
    table = markdown_table(["run", "wall time (s)", "CPU time (s)", "load average while running", "peak memory (MiB)"], rows)
    sizes = runs[-1]["sizes"]
    body = f"""## Forum survey (`python -m benchmarks.survey`)

{machine_line()}

`slicer-cloud survey --archive slicer-discourse-topics.jsonl.gz --out DIR` on the whole archive
({runs[-1]['summary']}). The machine was shared with other work while it ran (the load average
column; 2 cores) and the benchmark ran at niceness {os.nice(0)}: the CPU time is the work itself,
the wall time what a user waited. The requirement is under 5 minutes of wall time on this machine.

{table}

Median wall time {statistics.median(r['wall'] for r in runs):.0f} s. Output: topics.csv
{sizes['topics.csv'] / 1024**2:.1f} MiB, report.html {sizes['report.html'] / 1024:.0f} KiB (plots inlined as SVG).
"""
    print(body)
    write_section("survey", body)


if __name__ == "__main__":
    main()
