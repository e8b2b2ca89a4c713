from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
