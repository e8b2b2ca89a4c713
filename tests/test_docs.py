"""The documentation: the README is a front door, the site builds with `mkdocs build --strict`, and its
configuration reference (generated from the registries at build time by scripts/mkdocs_hooks.py)
names every registered component with every constructor option."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

# A page speaks to readers anywhere: not of the tracker's issues, the bars a change had to pass,
# work sessions, or what can be fetched on one machine.
WORKPLACE_WORDS = re.compile(
    r"\bissues?\b|issue's|acceptance bar|\bbars\b|\bsession \d+|\bthis session\b|downloaded here|fetched here",
    re.IGNORECASE,
)


def test_readme_is_a_front_door_of_at_most_250_lines():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_readme_links_reach_files_that_exist():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+://", target):
            assert (REPO / target).exists(), target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_page_does_not_speak_of_the_workplace(page):
    hits = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if WORKPLACE_WORDS.search(line)
    ]
    assert not hits, hits


def test_images_are_small():
    for image in (REPO / "docs" / "images").iterdir():
        assert image.stat().st_size < 200_000, image.name


REGISTERED = """
import json
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import ALL_REGISTRIES, constructor_parameters
load_plugins()
print(json.dumps({r.plural: {n: list(constructor_parameters(c)) for n, c in r} for r in ALL_REGISTRIES}))
"""


def registered() -> dict[str, dict[str, list[str]]]:
    """Every registered component and its constructor options, as a fresh process sees them
    (built-ins and the installed plugins; nothing a test registered in this one)."""
    out = subprocess.run([sys.executable, "-c", REGISTERED], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference_sections(page: str) -> dict[tuple[str, str], str]:
    """(h2 id, component name) -> the HTML of that component's section of the reference page."""
    sections, h2 = {}, None
    parts = re.split(r"(<h[23][^>]*>.*?</h[23]>)", page, flags=re.DOTALL)
    for index, part in enumerate(parts):
        heading = re.match(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h[23]>', part, flags=re.DOTALL)
        if not heading:
            continue
        level, anchor, title = heading.groups()
        if level == "2":
            h2 = anchor
            continue
        name = re.search(r"<code>(.*?)</code>", title)
        if name and index + 1 < len(parts):
            sections[(h2, html.unescape(name.group(1)))] = parts[index + 1]
    return sections


@pytest.mark.slow
def test_site_builds_strict_and_its_reference_names_every_component_and_option(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert build.returncode == 0 and "WARNING" not in build.stderr, build.stderr[-5000:]
    for page in ("index.html", "getting-started/index.html", "tasks/translation/index.html", "images"):
        assert (tmp_path / page).exists(), page
    sections = reference_sections((tmp_path / "reference" / "index.html").read_text(encoding="utf-8"))
    missing = []
    for plural, components in registered().items():
        h2 = re.sub(r"[ _]", "-", plural)
        for name, options in components.items():
            section = sections.get((h2, name))
            if section is None:
                missing.append(f"{plural}: {name}")
                continue
            for option in options:
                if not re.search(rf"<td><code>(?:[\w.]+\.)?{re.escape(option)}</code></td>", section):
                    missing.append(f"{plural}: {name}.{option}")
    assert not missing, f"missing from the configuration reference: {missing}"
    reference = re.sub(r"<[^>]+>", " ", (tmp_path / "reference" / "index.html").read_text(encoding="utf-8"))
    assert not WORKPLACE_WORDS.search(reference), WORKPLACE_WORDS.search(reference)
