"""Where a command writes, checked before it reads anything: an output never replaces an input.

predict, evaluate, inspect and export name their outputs and their inputs (config key -> path) to
`refuse_overwrite` before they load a model or write a file. Paths are compared resolved, so a
symlink to an input, or `./x` for `x`, is that input. A mistake fails in one line naming both keys:

    output=best.ckpt is the ckpt file (ckpt=best.ckpt); give output another path
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from seqtasks.errors import ConfigError


def paths_of(value: Any) -> list[str]:
    """The paths a config value names: none (null, or '-' for standard input), one, or each of a list's."""
    if value is None or str(value) == "-":
        return []
    if isinstance(value, str | Path):
        return [str(value)]
    return [path for item in value for path in paths_of(item)]


def meeting(output: Path, other: Path, is_directory: bool) -> str | None:
    """How an output path meets a path that is read (both resolved), in words; None when apart. An
    output directory holding an input would mix what is written with what is read."""
    kind = "directory" if other.is_dir() else "file"
    if output == other:
        return f"is the {{}} {kind}"
    if other in output.parents:
        return "is inside the {} directory" if kind == "directory" else "lies under the {} file, which is no directory"
    if is_directory and output in other.parents:
        return f"holds the {{}} {kind}"
    return None


def check_kind(key: str, path: str, is_directory: bool) -> None:
    """An output file must not be an existing directory, nor an output directory an existing file."""
    if is_directory and Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(f"{key}={path} is a file; expected a directory")
    if not is_directory and Path(path).is_dir():
        raise ConfigError(f"{key}={path} is a directory; expected a file to write")


def refuse_overwrite(outputs: Mapping[str, Any], inputs: Mapping[str, Any], directories: Collection[str] = ()) -> None:
    """ConfigError unless every output (key -> path; null skipped) is apart from every input (key
    -> path or list of paths; null and '-' skipped) and from the other outputs. An output may not
    be an input, nor lie inside an input directory (an exported model); an output directory (its
    key in `directories`) may not hold an input either."""
    read = [(key, source, Path(source).resolve()) for key, value in inputs.items() for source in paths_of(value)]
    written: list[tuple[str, str, Path]] = []
    for key, value in outputs.items():
        for path in paths_of(value):
            check_kind(key, path, key in directories)
            target = Path(path).resolve()
            for other_key, other, resolved in read:
                relation = meeting(target, resolved, key in directories)
                if relation:
                    raise refusal(key, path, relation.format(other_key), other_key, other)
            for other_key, other, resolved in written:
                if target == resolved:  # two outputs in one file: the second would replace the first
                    raise refusal(key, path, f"is the {other_key} file", other_key, other)
            written.append((key, path, target))


def refusal(key: str, path: str, relation: str, other_key: str, other: str) -> ConfigError:
    return ConfigError(f"{key}={path} {relation} ({other_key}={other}); give {key} another path")
