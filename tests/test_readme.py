"""The README a newcomer reads: two quick-start commands that exist, and links that lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_quick_start_is_two_make_commands_the_makefile_has():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```console\n(.*?)```", section(readme, "Quick start"), re.S)
    assert block, "the quick start has a console block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"


def test_the_four_ways_are_in_the_readme_with_a_guide_each():
    ways = section((ROOT / "README.md").read_text(), "Four ways to work")
    for name, guide in [("Web viewer", "viewer.md"), ("Remote desktop", "desktop.md"), ("Notebook", "jupyter.md"), ("Compute API", "compute.md")]:
        row = next((line for line in ways.splitlines() if f"**{name}**" in line), None)
        assert row is not None, name
        assert f"docs/{guide}" in row


def test_every_relative_link_in_the_readme_and_docs_exists():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
