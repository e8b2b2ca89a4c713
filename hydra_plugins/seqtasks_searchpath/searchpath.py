"""Hydra discovers this (any module under the `hydra_plugins` namespace) and lets installed
seqtasks plugins ship their own config group options: a plugin whose top-level package has a
`conf/` directory (e.g. conf/encoder/layernorm_lstm.yaml) gets it added to the search path.
It finds the directory without importing the plugin, so other Hydra apps pay nothing."""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class SeqtasksPluginConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for entry_point in entry_points(group="seqtasks.plugins"):
            package = entry_point.value.split(":")[0].split(".")[0]
            spec = importlib.util.find_spec(package)
            for location in (spec.submodule_search_locations or []) if spec else []:
                conf = Path(location) / "conf"
                if conf.is_dir():
                    search_path.append(f"seqtasks-plugin-{entry_point.name}", f"file://{conf}")
