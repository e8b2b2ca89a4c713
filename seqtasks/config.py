"""Where the config groups are, whether seqtasks runs from a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """The `conf/` directory: installed as the package `seqtasks.conf` in a wheel, at the top of
    the repository in a checkout or editable install."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"seqtasks configs not found beside {package}; reinstall seqtasks")
