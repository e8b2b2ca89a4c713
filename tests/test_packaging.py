"""A non-editable install must carry every package and every config file: build the wheel from a
clean copy of the sources (an in-tree build/ would hide a missing file) and look inside."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_every_package_and_config(tmp_path):
    source = tmp_path / "src"
    for name in ("seqtasks", "conf", "hydra_plugins"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("seqtasks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"seqtasks/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)
    packages = {p.relative_to(REPO).as_posix() for p in (REPO / "seqtasks").rglob("__init__.py")}
    assert packages <= names, sorted(packages - names)
    assert "hydra_plugins/seqtasks_searchpath/searchpath.py" in names
