"""The report's plots, drawn offline with matplotlib and returned as SVG text (inlined in the page)."""

from __future__ import annotations

import io
from collections import Counter

from slicer_cloud.survey.classify import APPROACHES

COLOURS = {
    "remote_desktop": "#d95f02",
    "headless_compute_node": "#1b9e77",
    "jupyter_kernel": "#7570b3",
    "pure_web": "#e7298a",
}
NAMES = {
    "remote_desktop": "remote desktop",
    "headless_compute_node": "headless compute node",
    "jupyter_kernel": "Jupyter kernel",
    "pure_web": "pure web",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: the report is written on servers too
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue and doctype: the SVG sits inside HTML


def per_year(table: dict[int, Counter]) -> str:
    """Remote-use topics per year, stacked by approach."""
    plt = _pyplot()
    years = sorted(table)
    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    bottom = [0] * len(years)
    for approach in APPROACHES:
        values = [table[year][approach] for year in years]
        axes.bar([str(y) for y in years], values, bottom=bottom, color=COLOURS[approach], label=NAMES[approach])
        bottom = [b + v for b, v in zip(bottom, values)]
    axes.set_ylabel("topics")
    axes.set_title("Remote-use topics per year, by approach")
    axes.legend(frameon=False, fontsize=8, loc="upper left")
    return _svg(figure)


def share(table: dict[int, Counter], totals: Counter) -> str:
    """Share of all of a year's topics that are about each approach (percent, stacked)."""
    plt = _pyplot()
    years = [year for year in sorted(table) if totals.get(year)]
    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    series = [[100 * table[year][approach] / totals[year] for year in years] for approach in APPROACHES]
    axes.stackplot(years, series, colors=[COLOURS[a] for a in APPROACHES], labels=[NAMES[a] for a in APPROACHES], alpha=0.85)
    axes.set_ylabel("% of the year's topics")
    axes.set_xticks(years)
    axes.set_title("Share of all forum topics about remote use")
    axes.legend(frameon=False, fontsize=8, loc="upper left")
    return _svg(figure)


def problems(table: dict[str, Counter], titles: dict[str, str]) -> str:
    """Problem clusters (rows) against approaches (columns): topics in each cell."""
    plt = _pyplot()
    keys = sorted(table, key=lambda key: -sum(table[key].values()))
    figure, axes = plt.subplots(figsize=(7.5, 0.42 * max(len(keys), 3) + 1.2))
    grid = [[table[key][approach] for approach in APPROACHES] for key in keys]
    image = axes.imshow(grid or [[0] * len(APPROACHES)], cmap="Blues", aspect="auto")
    axes.set_xticks(range(len(APPROACHES)), [NAMES[a] for a in APPROACHES], fontsize=8)
    axes.set_yticks(range(len(keys)), [titles[key] for key in keys], fontsize=8)
    peak = max((max(row) for row in grid), default=0)
    for row, values in enumerate(grid):
        for column, value in enumerate(values):
            if value:
                axes.text(column, row, str(value), ha="center", va="center", fontsize=8,
                          color="white" if value > peak / 2 else "black")
    axes.set_title("What people are stuck on (topics per problem and approach)")
    figure.colorbar(image, ax=axes, shrink=0.6)
    return _svg(figure)


def links(top: list[tuple[str, int]]) -> str:
    """The resources most often linked in answers to remote-use topics."""
    plt = _pyplot()
    top = list(reversed(top))
    figure, axes = plt.subplots(figsize=(7.5, 0.3 * max(len(top), 3) + 1.0))
    axes.barh([name if len(name) < 60 else name[:57] + "..." for name, _ in top], [count for _, count in top], color="#4c72b0")
    axes.set_xlabel("remote-use topics whose answers link it")
    axes.tick_params(axis="y", labelsize=8)
    axes.set_title("Most linked resources in answers")
    return _svg(figure)


def hand_survey(then: dict[str, int], now_same_years: dict[str, int], now_all: dict[str, int]) -> str:
    """The 2020 hand survey's funnel beside today's, over the same years and over all years."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 3.0))
    groups = ["hand survey (2020)", "today, same net, to 2020", "today, all years"]
    candidates = [then["candidates"], now_same_years["candidates"], now_all["candidates"]]
    remote = [then["remote"], now_same_years["remote"], now_all["remote"]]
    positions = range(len(groups))
    axes.bar([p - 0.2 for p in positions], candidates, width=0.4, color="#bbbbbb", label="candidate topics")
    axes.bar([p + 0.2 for p in positions], remote, width=0.4, color="#4c72b0", label="about remote use")
    for p, (c, r) in enumerate(zip(candidates, remote)):
        axes.text(p - 0.2, c, str(c), ha="center", va="bottom", fontsize=8)
        axes.text(p + 0.2, r, str(r), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(list(positions), groups, fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel("topics (log scale)")
    axes.legend(frameon=False, fontsize=8)
    axes.set_title("The hand survey's 170 / 63 beside today's numbers")
    return _svg(figure)
