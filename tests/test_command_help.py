"""`--help` and `-h` of every command besides training (whose help is Hydra's, tests/test_cli.py):
the command's summary and the keys it takes with their defaults, exit code 0, nothing run."""

from __future__ import annotations

import pytest
from conftest import command, seqtasks

from seqtasks.configuration.compose import compose_config

# Each command with its config (conf/<name>.yaml).
CONFIGURED = {f"seqtasks.{name}": name for name in ("predict", "evaluate", "export", "average", "inspect", "serve")}


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("module", sorted(CONFIGURED))
def test_help_lists_every_key_with_its_default(module, flag):
    # A mistake elsewhere on the line (a key that does not exist) does not stop the help.
    result = command(module, "ckpt=x.ckpt", flag, "no_such_key=1")
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"usage: python -m {module} ckpt=")
    defaults = compose_config(CONFIGURED[module], [])
    for key in defaults:
        assert any(line.startswith(f"  {key}=") for line in lines), f"{key} missing from\n{result.stdout}"
    assert "  ckpt=???" in result.stdout  # required: no default


def test_help_shows_defaults_comments_and_group_options():
    text = command("seqtasks.predict", "--help").stdout
    assert "  decoding=null " in text and "beam | greedy | sampling" in text
    assert "  batch_size=64 " in text and "inputs decoded at once" in text
    assert '  prime="\\n" ' in text  # a value with a line break is quoted


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_list_help(flag):
    result = command("seqtasks.list", flag)
    assert result.stdout.startswith("usage: python -m seqtasks.list")
    assert "plugin" in result.stdout and "encoders:" not in result.stdout  # the usage, not the listing


@pytest.mark.parametrize("module", ["seqtasks.predict", "seqtasks.list"])
def test_help_from_the_shell(module):
    result = seqtasks("--help", module=module)
    assert result.stdout.startswith(f"usage: python -m {module}") and result.stderr == ""
