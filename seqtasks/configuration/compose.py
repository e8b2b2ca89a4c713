"""Where the config groups are, and composing them with errors that say what to do.

Hydra's own messages for a mistyped option (`encoder=lstmm`) or key (`encoder.hiden_size=8`) name
the problem but not the fix; `compose_config` turns them into one line with the closest valid
name: `unknown encoder option 'lstmm'; choose from: gru, lstm, rnn (did you mean 'lstm'?)`.

The commands besides training (predict, evaluate, inspect, export) read their command line with
`command_config`, which also answers `--help` / `-h`: the command's summary and every key of its
config with its default and the comment conf/<command>.yaml gives it (`usage`).
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import nullcontext
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydra_plugins.seqtasks_searchpath.searchpath import SeqtasksPluginConfigs
from seqtasks.configuration.validation import closest, did_you_mean
from seqtasks.errors import ConfigError

HELP_FLAGS = ("--help", "-h")


# Hydra finds search-path plugins by scanning the hydra_plugins namespace on sys.path, which an
# editable install's import hook does not extend: outside the checkout, plugins' config options
# (task=sorting, encoder=layernorm_lstm) were unknown. Registering the class is idempotent.
Plugins.instance().register(SeqtasksPluginConfigs)


def config_dir() -> Path:
    """The `conf/` directory: installed as the package `seqtasks.conf` in a wheel, at the top of
    the repository in a checkout or editable install."""
    package = Path(__file__).resolve().parents[1]  # seqtasks/
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"seqtasks configs not found beside {package}; reinstall seqtasks")


def parse_overrides(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides=overrides)
    except HydraException as error:
        raise ConfigError(str(error).splitlines()[0]) from None


def values_of(override: Override) -> list[str | None]:
    """Every value an override sets: one, or each of a sweep's choices."""
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    value = override.value()
    if isinstance(value, list):  # several options of one group at once: logger=[csv,tensorboard]
        return [str(v) for v in value]
    return [value if value is None or isinstance(value, str) else override.get_value_element_as_str()]


def group_options(group: str) -> list[str]:
    """The options of a config group ([] when `group` is no group)."""
    return sorted(GlobalHydra.instance().config_loader().get_group_options(group, results_filter=ObjectType.CONFIG))


def check_choices(parsed: list[Override]) -> None:
    """A group set to an option it does not have fails, listing the options and the closest."""
    for override in parsed:
        options = group_options(override.key_or_group) if "." not in override.key_or_group else []
        if options and not override.is_sweep_override() and not override.is_delete():
            check_group_value(override, options)
        for value in values_of(override) if options else []:
            if value is not None and value not in options and not override.is_delete():
                raise ConfigError(
                    f"unknown {override.key_or_group} option '{value}'; choose from: "
                    f"{', '.join(options)}{did_you_mean(value, options)}"
                )


def check_group_value(override: Override, options: list[str]) -> None:
    """A group takes an option's name or a list of them: Hydra merges a mapping (logger={}) into
    the group's default, which stays on, and fails on null with a traceback."""
    value = override.value()
    if value is None or isinstance(value, dict):
        group = override.key_or_group
        off = "; logger=[] turns every logger off" if group == "logger" else ""
        raise ConfigError(
            f"{group}={override.get_value_element_as_str()}: {group} takes an option's name ({', '.join(options)}){off}"
        )


def check_keys(config_name: str, parsed: list[Override]) -> None:
    """A key override whose key the composed config lacks fails, naming the closest key."""
    is_group = {o.key_or_group: "." not in o.key_or_group and bool(group_options(o.key_or_group)) for o in parsed}
    # The groups shape the tree; a swept group is probed with its first choice, an emptied one
    # (logger=[]) as it is.
    base = compose(
        config_name,
        overrides=[
            f"{o.key_or_group}={values_of(o)[0] if values_of(o) else '[]'}"
            for o in parsed
            if is_group[o.key_or_group] and values_of(o)[:1] != [None]
        ],
        return_hydra_config=True,  # for the option each group has chosen (hydra.runtime.choices)
    )
    for override in parsed:
        key = override.key_or_group
        if override.type is not OverrideType.CHANGE or key.startswith("hydra") or is_group[key]:
            continue
        node, path = base, []
        for part in key.split("."):
            # keys(), not `in`: a mandatory value left at ??? is a key that `in` does not see.
            if not isinstance(node, DictConfig) or part not in node.keys():
                raise ConfigError(
                    f"no config key '{key}'" + unknown_key_hint(key, path, node, base.hydra.runtime.choices)
                )
            path = [*path, part]
            node = OmegaConf.select(base, ".".join(path), throw_on_missing=False)


def unknown_key_hint(key: str, path: list[str], node: object, chosen: DictConfig) -> str:
    """What to do about `key`, whose part after `path` (at `node`) the config lacks: choose its
    group first when none is chosen; the closest key; the keys the group's chosen option has (a
    key of another option, beam_size with decoding=sampling); else how to add a new key."""
    part = key.split(".")[len(path)]
    missing, group = "/".join([*path, part]), "/".join(path)
    if missing in chosen and chosen[missing] is None:  # a group left at null: no keys until an option is chosen
        return f": no {missing} is chosen; choose one: {missing}={'|'.join(group_options(missing))}"
    keys = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    match = closest(part, keys)
    if match:
        return f" (did you mean '{'.'.join([*path, match])}'?)"
    if group in chosen:
        return f": {group} '{chosen[group]}' has no {part}; its keys: {', '.join(keys)}"
    return f"; a new key is added with +{key}=..."


def check_overrides(config_name: str, overrides: list[str]) -> None:
    """Raise a ConfigError that names the fix for overrides Hydra would reject (unknown group
    options, misspelt keys, syntax errors), within an initialised config directory."""
    parsed = parse_overrides(overrides)
    check_choices(parsed)
    check_keys(config_name, parsed)


def command_config(config_name: str, argv: list[str] | None, doc: str) -> DictConfig:
    """The config of a command (`python -m seqtasks.predict ...`) from its arguments (sys.argv[1:]
    when argv is None), every mandatory key set; with --help or -h among them, the usage instead."""
    arguments = sys.argv[1:] if argv is None else argv
    exit_with_help(arguments, doc, config_name)
    return compose_config(config_name, arguments, complete=True)


def exit_with_help(arguments: list[str], doc: str, config_name: str | None = None) -> None:
    """With --help or -h among the arguments (whatever else is there): print the usage, exit 0."""
    if any(argument in HELP_FLAGS for argument in arguments):
        print(usage(doc, config_name))
        sys.exit(0)


def usage(doc: str, config_name: str | None = None) -> str:
    """A command's summary (its docstring's first paragraph) and, with its config, every key it
    takes as `key=default` with what conf/<config_name>.yaml says of it; a group lists its options."""
    summary = "usage: " + doc.strip().split("\n\n")[0].replace("`", "")
    if config_name is None:
        return summary
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name, return_hydra_config=True)
        groups = {group: group_options(group) for group in cfg.hydra.runtime.choices if not group.startswith("hydra")}
    notes = key_comments(config_dir() / f"{config_name}.yaml")
    values = OmegaConf.to_container(cfg, resolve=False)  # a mandatory key keeps its ???
    # (key=default, what it takes) for each group, then each key.
    rows = [(f"{g}={shown(cfg.hydra.runtime.choices[g])}", [" | ".join(o), notes.get(g)]) for g, o in groups.items()]
    rows += [(f"{k}={shown(v)}", [notes.get(k)]) for k, v in values.items() if k != "hydra" and k not in groups]
    width = max(len(setting) for setting, _ in rows)
    lines = [f"  {setting:<{width}}  {'; '.join(filter(None, about))}".rstrip() for setting, about in rows]
    return "\n".join([summary, "", "keys (key=value; ??? must be set):", *lines])


def shown(value: object) -> str:
    """A default as it is typed on the command line: plain words as they are, the rest as JSON."""
    if isinstance(value, str) and value and value.isprintable() and " " not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def key_comments(path: Path) -> dict[str, str]:
    """The comment on each top-level key (or defaults entry) of a config file, with the comment
    lines that continue it: the keys' documentation, which the composed config drops."""
    comments: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = re.match(r"^(?:  - )?(\w+):[^#]*(?:#\s*(.*))?$", line)
        continued = re.match(r"^\s+#\s*(.*)$", line)
        if entry:
            key = entry.group(1)
            comments[key] = entry.group(2) or ""
        elif continued and key:
            comments[key] = f"{comments[key]} {continued.group(1)}".strip()
        else:
            key = None
    return {key: comment for key, comment in comments.items() if comment}


def compose_config(config_name: str, overrides: list[str], complete: bool = False) -> DictConfig:
    """Compose conf/<config_name>.yaml with command-line overrides; a mistake is a ConfigError with
    the closest valid name instead of Hydra's traceback. `complete`: a mandatory key (???) left
    unset is an error too. Inside a running app (`python -m seqtasks`: Hydra already initialised,
    e.g. composing a pretraining stage) it composes with the app's Hydra."""
    initialised = GlobalHydra.instance().is_initialized()
    with nullcontext() if initialised else initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            cfg = compose(config_name, overrides=overrides)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            explain(config_name, overrides, error)
    missing = sorted(OmegaConf.missing_keys(cfg)) if complete else []
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set, e.g. {missing[0]}=...")
    return cfg


def explain(config_name: str, overrides: list[str], error: Exception) -> None:
    """Raise the ConfigError for a failed composition: the fix where one is known, else the first
    line of Hydra's message."""
    try:
        check_overrides(config_name, overrides)
    except (HydraException, OmegaConfBaseException, ValueError):
        pass
    message = str(error).strip().splitlines()
    raise ConfigError(message[0] if message else type(error).__name__) from None


def check_command_line(config_name: str, overrides: list[str]) -> None:
    """Check the overrides of `python -m seqtasks` (sweeps included) before Hydra runs them."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            check_overrides(config_name, overrides)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            explain(config_name, overrides, error)
