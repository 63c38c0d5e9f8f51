"""Writing the survey: ``topics.csv`` (every topic, its approach, confidence and evidence) and
``report.html``, one self-contained page (plots inlined as SVG, no script, no external file)."""

from __future__ import annotations

import csv
import html
from datetime import datetime, timezone
from pathlib import Path

from slicer_cloud.store.atomic import atomic_output
from slicer_cloud.survey import plots
from slicer_cloud.survey.analysis import HAND_SURVEY, Survey, TopicResult
from slicer_cloud.survey.classify import APPROACHES
from slicer_cloud.survey.problems import PROBLEM_TITLES

CSV_COLUMNS = ("topic_id", "title", "url", "created", "approach", "confidence", "evidence")

# What slicer-cloud offers for each approach: the survey doubles as the project's map of needs.
FEATURES = {
    "remote_desktop": {
        "name": "Remote desktop",
        "what": "the full Slicer desktop on another machine, its screen sent to the user",
        "command": "slicer-cloud desktop",
        "answer": "Xvnc on a private socket, openbox and a pinned noVNC behind a token-checked websocket bridge: "
        "the desktop in a browser tab, no VNC client or open VNC port.",
        "docs": "desktop.md",
    },
    "headless_compute_node": {
        "name": "Headless compute node",
        "what": "Slicer processing with no display, on a server, a cluster, a container or a CI runner",
        "command": "slicer-cloud api / slicer-cloud run",
        "answer": "a REST API and a batch command that run Slicer Execution-Model modules as jobs, on a local "
        "pool or a Dask cluster, with no X server needed.",
        "docs": "compute.md",
    },
    "jupyter_kernel": {
        "name": "Jupyter kernel",
        "what": "Slicer driven from notebooks: locally, on a JupyterHub or on Binder",
        "command": "slicer-cloud serve / slicer-cloud hub / slicer_cloud.notebook",
        "answer": "a Jupyter Server with the portal, views inside notebooks from any Python kernel, and JupyterHub "
        "for many users.",
        "docs": "jupyter.md",
    },
    "pure_web": {
        "name": "Pure web",
        "what": "Slicer's functions in a web page: viewers, web applications, vtk.js, trame, WebAssembly",
        "command": "slicer-cloud view",
        "answer": "Slicer's own core rendering on the server, the views streamed to any browser, one process per tab.",
        "docs": "viewer.md",
    },
}


def write_topics_csv(survey: Survey, path: Path) -> None:
    """Every topic, remote-use ones first by approach and confidence, then the rest by id."""
    order = {approach: index for index, approach in enumerate((*APPROACHES, "not_remote"))}
    rows = sorted(survey.results, key=lambda r: (order[r.approach], -r.classification.confidence, r.id))
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        tmp.chmod(0o644)
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for result in rows:
            writer.writerow(
                [
                    result.id,
                    result.title,
                    result.url,
                    result.created.strftime("%Y-%m-%d") if result.created else "",
                    result.approach,
                    f"{result.classification.confidence:.2f}",
                    result.classification.explain(),
                ]
            )


def write_report(survey: Survey, out: Path, *, docs_base: str | None = None, elapsed_s: float | None = None) -> dict[str, Path]:
    """Write topics.csv, report.html and the plots as SVG files (for documentation) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(survey)
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    written = {}
    for name, svg in figures.items():
        with atomic_output(plot_dir / f"{name}.svg") as tmp:
            tmp.write_text(svg, encoding="utf-8")
            tmp.chmod(0o644)  # a report is meant to be shared
        written[f"plot:{name}"] = plot_dir / f"{name}.svg"
    write_topics_csv(survey, out / "topics.csv")
    written["csv"] = out / "topics.csv"
    page = render_html(survey, figures, docs_base=docs_base, elapsed_s=elapsed_s)
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
        tmp.chmod(0o644)
    written["html"] = out / "report.html"
    return written


def _figures(survey: Survey) -> dict[str, str]:
    table = survey.per_year()
    then = survey.hand_survey_today()
    return {
        "hand_survey": plots.hand_survey(
            {"candidates": HAND_SURVEY["candidates"], "remote": HAND_SURVEY["remote"]},
            {"candidates": then["candidates"], "remote": then["remote_in_net"]},
            {"candidates": survey.candidates(), "remote": len(survey.remote)},
        ),
        "per_year": plots.per_year(table),
        "share": plots.share(table, survey.topics_per_year),
        "problems": plots.problems(survey.problem_table(), PROBLEM_TITLES),
        "links": plots.links(survey.top_links(limit=15)),
    }


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _topic_link(result: TopicResult) -> str:
    date = result.created.strftime("%Y-%m-%d") if result.created else ""
    return f'<a href="{_e(result.url)}">{_e(result.title)}</a> <span class="muted">{date}</span>'


def _link(name: str) -> str:
    url = name if name.startswith(("http://", "https://")) else "https://" + name
    return f'<a href="{_e(url)}">{_e(name)}</a>'


def _docs_link(page: str, docs_base: str | None) -> str:
    if not docs_base:
        return f"<code>docs/{_e(page)}</code>"
    return f'<a href="{_e(docs_base.rstrip("/") + "/" + page)}">docs/{_e(page)}</a>'


def render_html(survey: Survey, figures: dict[str, str], *, docs_base: str | None = None, elapsed_s: float | None = None) -> str:
    counts = survey.counts()
    remote = survey.remote
    then = survey.hand_survey_today()
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    years = [year for year in survey.topics_per_year]
    span = f"{min(years)}–{max(years)}" if years else "no dates"
    parts: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>slicer-cloud survey: remote use of Slicer on its forum</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>How the Slicer community asks to use Slicer remotely</h1>",
        f"<p class='muted'>Source: {_e(survey.source)} · {survey.total:,} topics, {span} · generated {generated}"
        + (f" in {elapsed_s:.0f} s" if elapsed_s is not None else "")
        + "</p>",
        "<section class='cards'>",
        f"<div class='card'><b>{len(remote):,}</b><span>topics about remote use "
        f"({100 * len(remote) / max(survey.total, 1):.1f}% of all)</span></div>",
    ]
    for approach in APPROACHES:
        parts.append(
            f"<div class='card' style='border-color:{plots.COLOURS[approach]}'><b>{counts[approach]:,}</b>"
            f"<span><a href='#{approach}'>{_e(FEATURES[approach]['name'])}</a></span></div>"
        )
    parts.append("</section>")

    parts += [
        "<h2>Then and now</h2>",
        f"<p>The 2020 hand survey scraped the forum for <i>web, cloud, internet, remote</i>, found "
        f"<b>{HAND_SURVEY['candidates']}</b> candidate topics and kept <b>{HAND_SURVEY['remote']}</b> that were really "
        f"about remote use. The same words over the same years (to {HAND_SURVEY['year']}) find "
        f"<b>{then['candidates']}</b> topics today, of which the classifier keeps <b>{then['remote_in_net']}</b>; "
        f"over those years it finds <b>{then['remote_all']}</b> remote-use topics in all, most of them without those "
        f"words (they say VNC, Docker, Jupyter, headless...). Over all years: <b>{survey.candidates():,}</b> topics "
        f"carry any remote-use signal and <b>{len(remote):,}</b> are about remote use.</p>",
        figures["hand_survey"],
        "<h2>Remote-use topics per year</h2>",
        figures["per_year"],
        _year_table(survey),
        "<h2>Share of all topics</h2>",
        figures["share"],
        "<h2>What people are stuck on</h2>",
        "<p>Clusters of recurring problems, found by their phrases in the question (a topic can be in several).</p>",
        figures["problems"],
        "<h2>Most linked resources in answers</h2>",
        figures["links"],
    ]
    for approach in APPROACHES:
        parts.append(_approach_section(survey, approach, docs_base))
    parts.append(_open_questions(survey))
    parts += [
        "<h2>Method</h2>",
        "<p>Each topic's title, question and answers are read by weighted phrase rules (and links), after "
        "look-alikes such as <i>ITK remote module</i>, <i>PLUS server</i> or <i>point cloud</i> are set aside; the "
        "approach with the highest score wins when it is high enough and the asker's own words point to it. The "
        "evidence column of <code>topics.csv</code> lists the phrases and links that decided each topic. The counts "
        "lean to recall: nearly every remote-use topic is found, and some that are not get counted. Measured "
        f"precision and recall per class: {_docs_link('survey.md', docs_base)}.</p>",
    ]
    if survey.skipped:
        parts.append(f"<p class='muted'>{len(survey.skipped)} input records skipped; first: {_e(survey.skipped[0])}</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _year_table(survey: Survey) -> str:
    table = survey.per_year()
    head = "".join(f"<th>{_e(plots.NAMES[a])}</th>" for a in APPROACHES)
    rows = []
    for year, counter in table.items():
        total = survey.topics_per_year.get(year, 0)
        remote = sum(counter.values())
        cells = "".join(f"<td>{counter[a]}</td>" for a in APPROACHES)
        share = f"{100 * remote / total:.1f}%" if total else "–"
        rows.append(f"<tr><td>{year}</td>{cells}<td><b>{remote}</b></td><td>{total:,}</td><td>{share}</td></tr>")
    return (
        f"<table><tr><th>year</th>{head}<th>remote use</th><th>all topics</th><th>share</th></tr>{''.join(rows)}</table>"
    )


def _approach_section(survey: Survey, approach: str, docs_base: str | None) -> str:
    feature = FEATURES[approach]
    results = sorted(
        (r for r in survey.remote if r.approach == approach), key=lambda r: (-r.classification.confidence, -r.id)
    )
    problems = survey.problem_table()
    ranked = sorted(((problems[key][approach], key) for key in problems if problems[key][approach]), reverse=True)
    problem_items = "".join(f"<li>{_e(PROBLEM_TITLES[key])}: {count}</li>" for count, key in ranked[:6])
    link_items = "".join(f"<li>{_link(name)} ({count})</li>" for name, count in survey.top_links(approach, limit=6))
    examples = "".join(
        f"<tr><td>{_topic_link(r)}</td><td>{r.classification.confidence:.2f}</td>"
        f"<td class='evidence'>{_e(r.classification.explain(limit=3))}</td></tr>"
        for r in results[:8]
    )
    colour = plots.COLOURS[approach]
    return (
        f"<section class='approach' id='{approach}' style='border-left-color:{colour}'>"
        f"<h2>{_e(feature['name'])}: {len(results)} topics</h2>"
        f"<p>{_e(feature['what'])}.</p>"
        f"<p class='answer'><b>What slicer-cloud offers:</b> <code>{_e(feature['command'])}</code>: {_e(feature['answer'])} "
        f"Guide: {_docs_link(feature['docs'], docs_base)}.</p>"
        f"<div class='columns'><div><h3>Stuck on</h3><ul>{problem_items or '<li>none found</li>'}</ul></div>"
        f"<div><h3>Answers link to</h3><ul>{link_items or '<li>no links</li>'}</ul></div></div>"
        f"<h3>Clearest topics</h3><table><tr><th>topic</th><th>confidence</th><th>evidence</th></tr>{examples}</table>"
        "</section>"
    )


def _open_questions(survey: Survey) -> str:
    unanswered = survey.unanswered()
    unresolved = survey.unresolved()

    def rows(results: list[TopicResult]) -> str:
        return "".join(
            f"<tr><td>{_topic_link(r)}</td><td>{_e(plots.NAMES[r.approach])}</td></tr>" for r in results[:20]
        )

    return (
        "<h2>Unanswered and unresolved questions</h2>"
        f"<p><b>{len(unanswered)}</b> remote-use topics have no reply from anyone but the asker; "
        f"<b>{len(unresolved)}</b> more were answered but the asker never said it worked (no accepted answer where "
        "the forum marks them; in an archive, no later thanks or <i>works</i> from the asker). Newest first, 20 of each.</p>"
        f"<h3>Unanswered</h3><table><tr><th>topic</th><th>approach</th></tr>{rows(unanswered)}</table>"
        f"<h3>Answered, not resolved</h3><table><tr><th>topic</th><th>approach</th></tr>{rows(unresolved)}</table>"
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:980px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.7em;margin-bottom:4px} h2{margin-top:36px;border-bottom:1px solid #eee;padding-bottom:4px}
.muted{color:#777;font-size:.9em} svg{max-width:100%;height:auto;display:block;margin:8px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:18px 0}
.card{border:2px solid #888;border-radius:8px;padding:10px 14px;flex:1 1 120px;display:flex;flex-direction:column}
.card b{font-size:1.6em} table{border-collapse:collapse;width:100%;font-size:.9em;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.approach{border-left:6px solid #888;padding-left:14px;margin-top:28px}
.answer{background:#f3f6fb;padding:8px 10px;border-radius:6px}
.columns{display:flex;gap:24px;flex-wrap:wrap} .columns>div{flex:1;min-width:280px}
.evidence{color:#555;font-size:.85em} code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
"""
