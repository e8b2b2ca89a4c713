"""Plugins: add components without forking seqtasks.

Two ways, both loaded before any config is built:
- an installed package that declares an entry point in the group `seqtasks.plugins`
  (its module is imported; it may ship config group options in a `conf/` sub-package, which
  `hydra_plugins/seqtasks_searchpath` adds to Hydra's search path);
- the config key `plugins: [my_module, path/to/file.py]` imports modules or files.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path

from seqtasks.errors import ConfigError

ENTRY_POINT_GROUP = "seqtasks.plugins"
_loaded: set[str] = set()


def load_builtin_components() -> None:
    """Import every built-in component module, so the registries are filled."""
    import seqtasks.data  # noqa: F401
    import seqtasks.decoding  # noqa: F401
    import seqtasks.encoders  # noqa: F401
    import seqtasks.heads  # noqa: F401
    import seqtasks.image_encoders  # noqa: F401
    import seqtasks.tasks  # noqa: F401
    import seqtasks.tokenizers  # noqa: F401


def load_entry_point_plugins() -> None:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry point {entry_point.name} = {entry_point.value}"
        if key in _loaded:
            continue
        try:
            entry_point.load()
        except Exception as error:  # a broken plugin must say which one it is
            raise ConfigError(f"plugin {key} (group {ENTRY_POINT_GROUP}) failed to import: {error}") from error
        _loaded.add(key)


def _import_file(path: Path) -> None:
    module_name = f"seqtasks_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)


def load_plugins(extra: Iterable[str] = ()) -> None:
    """Built-ins, then installed entry-point plugins, then `extra` modules or .py files."""
    load_builtin_components()
    load_entry_point_plugins()
    for name in extra or ():
        is_file = name.endswith(".py")
        key = str(Path(name).resolve()) if is_file else name
        if key in _loaded:
            continue
        try:
            if is_file:
                if not Path(name).is_file():
                    raise FileNotFoundError(f"no such file: {Path(name).resolve()}")
                _import_file(Path(name).resolve())
            else:
                importlib.import_module(name)
        except ConfigError:
            raise
        except Exception as error:
            raise ConfigError(f"plugin '{name}' (from the config key 'plugins') failed to import: {error}") from error
        _loaded.add(key)
