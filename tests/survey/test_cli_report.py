"""``slicer-cloud survey`` as a user runs it: the CSV, the self-contained page, its errors."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.survey.forum import synthetic_topics, write_archive

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "slicer_cloud.cli", "survey", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survey")
    archive = write_archive(folder / "forum.jsonl.gz", synthetic_topics(), extra_lines=["{broken"])
    result = run_cli("--archive", str(archive), "--out", str(folder / "out"), "--link-base", "https://forum.example", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "out", result


def test_cli_prints_the_counts_and_the_files(report):
    out, result = report
    assert "10 topics, 5 about remote use: remote_desktop 2, headless_compute_node 1, jupyter_kernel 1, pure_web 1" in result.stdout
    assert f"wrote {out / 'topics.csv'}" in result.stdout and f"wrote {out / 'report.html'}" in result.stdout


def test_topics_csv_has_every_topic_with_its_evidence(report):
    out, _ = report
    with open(out / "topics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["topic_id", "title", "url", "created", "approach", "confidence", "evidence"]
    by_id = {int(row["topic_id"]): row for row in rows}
    assert len(by_id) == 10
    vnc = by_id[101]
    assert vnc["approach"] == "remote_desktop" and vnc["created"] == "2019-05-02"
    assert vnc["url"].startswith("https://forum.example/t/") and vnc["url"].endswith("/101")
    assert "title: 'VNC'" in vnc["evidence"] and 0.5 < float(vnc["confidence"]) <= 0.99
    assert by_id[105]["approach"] == "not_remote" and "ignored look-alikes" in by_id[105]["evidence"]
    assert [row["approach"] for row in rows[:4]] == ["remote_desktop", "remote_desktop", "headless_compute_node", "jupyter_kernel"]


def test_report_is_one_self_contained_page(report):
    out, _ = report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 5  # hand survey, per year, share, problems, links
    assert not re.search(r"<script|<link\b|<img\b|src=\"http|@import|url\(http", page)  # nothing fetched from elsewhere
    assert "<b>170</b>" in page and "<b>63</b>" in page  # the hand survey beside today's numbers
    for command, docs in (("slicer-cloud desktop", "desktop.md"), ("slicer-cloud api / slicer-cloud run", "compute.md"),
                          ("slicer-cloud serve", "jupyter.md"), ("slicer-cloud view", "viewer.md")):
        assert command in page and docs in page
    assert "github.com/Slicer/SlicerDocker" in page  # most linked resources in answers
    assert "X display missing" in page  # a problem cluster of the headless topic
    assert "1 input records skipped; first: line 11: not JSON" in page
    assert "Unanswered" in page and "X2Go" in page  # topic 109 has no reply
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "hand_survey.svg", "links.svg", "per_year.svg", "problems.svg", "share.svg"
    ]


def test_report_renders_in_a_browser(report, browser):
    out, _ = report
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto((out / "report.html").as_uri())
        assert page.locator("svg").count() == 5
        sizes = page.eval_on_selector_all("main > svg", "els => els.map(e => e.getBoundingClientRect().width)")
        assert len(sizes) == 5 and all(width > 400 for width in sizes)  # drawn, not collapsed
        assert page.locator("#remote_desktop h2").inner_text() == "Remote desktop: 2 topics"
    finally:
        page.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give exactly one of --archive FILE or --forum URL."),
        (["--archive", "missing.jsonl.gz"], "missing.jsonl.gz does not exist"),
        (["--archive", "x.jsonl", "--forum", "https://f.example"], "Give exactly one"),
        (["--forum", "not-a-url"], "'not-a-url' is not a forum address"),
    ],
)
def test_bad_input_gets_a_clear_message(tmp_path, args, message):
    (tmp_path / "x.jsonl").write_text("")
    result = run_cli(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_live_survey_against_a_loopback_forum(fake_forum, tmp_path):
    _, url = fake_forum
    os.environ["SLICER_CLOUD_SURVEY_REQUEST_INTERVAL_S"] = "0.01"  # a setting from the environment
    try:
        result = run_cli("--forum", url, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), cwd=tmp_path)
    finally:
        os.environ.pop("SLICER_CLOUD_SURVEY_REQUEST_INTERVAL_S")
    assert result.returncode == 0, result.stderr
    assert "10 topics, 5 about remote use" in result.stdout
    assert "3 listing pages, 32 search pages, 7 topics fetched, 0 from the cache" in result.stdout
    assert "listing page 0" in result.stderr and "searched 'vnc'" in result.stderr  # progress on stderr
    assert (tmp_path / "cache" / url.split("//")[1].replace(":", "_") / "index.json").exists()
