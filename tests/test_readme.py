"""The commands shown in the README and the documentation pages (docs/) are the commands that work.

Every shell block (```bash) says in an HTML comment just above it whether it runs here:

    <!-- run -->                  it takes seconds: this file runs it and it must exit 0
    <!-- not run: <reason> -->    shown, not run, for one of the REASONS below
    <!-- file: <path> -->         (before any block) the block is written to <path> for the commands after it

The blocks that run are run in order (the README, then the pages in the order of mkdocs.yml's nav),
by bash with `set -euo pipefail`, all in one scratch directory (holding a link to the checkout's
`scripts/`), so a page may use what an earlier one wrote: the tiny model that Getting started trains
into `runs/try` is the one that Look inside inspects and Long runs exports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Why a shell block is shown but not run here.
REASONS = {
    "install": "installs packages",
    "long": "trains or measures for minutes to hours (a recipe, a benchmark); tiny versions run where they help",
    "placeholder": "needs files of your own or a trained recipe's run (`<run>`, `my.de`, `images.txt`, ...)",
    "cluster": "needs several GPUs, several machines or a SLURM cluster",
    "suite": "runs the test suite or builds the site: CI runs those itself",
    "server": "starts a server that runs until it is stopped (tests/test_serve.py drives one)",
}
SHELL = {"bash", "sh", "shell", "console"}
MARKER = re.compile(r"<!--\s*(run|not run:\s*(?P<reason>[\w-]+)|file:\s*(?P<path>\S+))\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    text: str
    marker: str | None  # "run", "not run", "file" or None
    argument: str | None  # the reason, or the file's path

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """The README, then the documentation pages in the order of mkdocs.yml's nav, then any other page."""
    nav = re.findall(r":\s*(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), flags=re.MULTILINE)
    ordered = [REPO / "docs" / name for name in nav if (REPO / "docs" / name).is_file()]
    rest = sorted(p for p in (REPO / "docs").rglob("*.md") if p not in ordered)
    return [REPO / "README.md", *ordered, *rest]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, each with the marker comment just above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        above = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        marker = MARKER.fullmatch(above)
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end])
        kind = None if marker is None else marker[1].split(":")[0].strip()
        found.append(
            Block(
                str(path.relative_to(REPO)),
                i + 1,
                opening["lang"],
                body,
                kind,
                marker and (marker["reason"] or marker["path"]),
            )
        )
        i = end + 1
    return found


ALL_BLOCKS = [block for page in pages() for block in blocks(page)]
RUN = [block for block in ALL_BLOCKS if block.marker in ("run", "file")]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = quickstart.split("```bash\n")[1:]
    return [block.split("\n```", 1)[0].strip() for block in blocks]


def test_quickstart_has_an_install_and_run_command_and_a_test_command():
    commands = readme_commands()
    assert "python -m seqtasks " in commands[0] and commands[0].startswith("pip install torch==2.13.0")
    assert "pytest" in commands[1] and commands[1].startswith("pip install torch==2.13.0")


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (REPO / ".ci" / "run").read_text().splitlines()


def test_every_shell_block_says_whether_it_runs_and_why_not():
    unmarked = [b.id for b in ALL_BLOCKS if b.lang in SHELL and b.marker not in ("run", "not run")]
    assert not unmarked, f"shell blocks without <!-- run --> or <!-- not run: <reason> -->: {unmarked}"
    unknown = [f"{b.id} ({b.argument})" for b in ALL_BLOCKS if b.marker == "not run" and b.argument not in REASONS]
    assert not unknown, f"reasons must be one of {', '.join(REASONS)}: {unknown}"
    misplaced = [b.id for b in ALL_BLOCKS if b.marker in ("run", "not run") and b.lang not in SHELL]
    assert not misplaced, f"run markers on blocks that are not shell commands: {misplaced}"


def test_commands_are_in_fenced_shell_blocks():
    """An indented code block would escape the checks above."""
    command = re.compile(r"^( {4}|\t)+(\$ )?(python|pip|SEQTASKS_DATA=|torchrun|srun|mkdocs) ")
    for page in pages():
        inside, stray = None, []
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            opening = FENCE.match(line)
            if opening and inside is None:
                inside = opening["fence"]
            elif inside and line.strip().startswith(inside):
                inside = None
            elif inside is None and command.match(line):
                stray.append(number)
        assert not stray, f"{page.relative_to(REPO)}: commands outside a fenced block at lines {stray}"


def test_the_pages_show_commands_that_run():
    assert len([b for b in RUN if b.marker == "run"]) >= 10


def environment() -> dict[str, str]:
    data = os.environ.get("SEQTASKS_DATA") or str(REPO.parent / "shared" / "data")
    env = {
        **os.environ,
        "SEQTASKS_DATA": str(Path(data).resolve()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "WANDB_MODE": "offline",
        "NETRC": "/nonexistent",
    }
    env.pop("WANDB_API_KEY", None)
    return env


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every block marked to run, run once, in order, in one scratch directory -> results by block id."""
    work = tmp_path_factory.mktemp("doc-commands")
    (work / "scripts").symlink_to(REPO / "scripts")
    env, results = environment(), {}
    for block in RUN:
        if block.marker == "file":
            target = work / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text + "\n", encoding="utf-8")
            continue
        results[block.id] = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + block.text],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    return results


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in RUN if b.marker == "run"], ids=lambda b: b.id)
def test_command_block_runs(executed, block):
    result = executed[block.id]
    assert result.returncode == 0, (
        f"{block.id} exited {result.returncode}:\n{block.text}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
