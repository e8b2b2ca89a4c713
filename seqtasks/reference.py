"""The configuration reference, generated from the registries and conf/ (the docs site's
`reference.md`, written by the MkDocs hook `scripts/mkdocs_hooks.py` at every build).

Every registered component (built-in, and the installed plugins' ones) is listed with every option
its constructor accepts, as `constructor_parameters` reads them (the same call the registries check
configs with): the option's config key, what it takes (`seqtasks.configuration.validation.describe` of its
annotation), its default, and the comment that the config file choosing the component writes beside
the key. Nothing here is typed by hand, so the page cannot drift from the code.

    python -m seqtasks.reference [output.md]     # the page on standard output, or into a file
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from seqtasks.configuration.compose import config_dir
from seqtasks.configuration.plugins import ENTRY_POINT_GROUP, load_plugins
from seqtasks.configuration.registry import (
    ALL_REGISTRIES,
    ATTENTION,
    DATASETS,
    DECODING,
    ENCODERS,
    HEADS,
    IMAGE_ENCODERS,
    TASKS,
    TOKENIZERS,
    Registry,
    constructor_parameters,
)
from seqtasks.configuration.validation import describe
from seqtasks.runtime.build import FLOWING, GROUPS

# The config group (or key) that holds a registry's components, so options are shown as they are set.
CONFIG_KEY = {
    TASKS: "task",
    DATASETS: "data",
    TOKENIZERS: "tokenizer",
    ENCODERS: "encoder",
    IMAGE_ENCODERS: "image_encoder",
    HEADS: "head",
    ATTENTION: "head.attention",
    DECODING: "decoding",
}
TITLE = {
    TASKS: "Tasks",
    DATASETS: "Datasets",
    TOKENIZERS: "Tokenizers",
    ENCODERS: "Encoders",
    IMAGE_ENCODERS: "Image encoders",
    HEADS: "Heads",
    ATTENTION: "Attention",
    DECODING: "Decoding strategies",
}
SET_BY_SEQTASKS = (*FLOWING, "tokenizers", "plugins")  # arguments the builder passes, never config keys
SET_BY_SEQTASKS_NOTE = "set by seqtasks (it flows from the data or the other components), not a config key"
# Groups that are not registries: a `_target_` class (optimizer, scheduler, trainer, logger) or a recipe.
OTHER_GROUPS = ("optimizer", "scheduler", "trainer", "logger", "experiment", "sweep")
COMMAND_CONFIGS = ("predict", "evaluate", "export", "average", "inspect")


@dataclass(frozen=True)
class Option:
    name: str  # the constructor argument
    key: str  # how the reference shows it: the config key (`encoder.hidden_size`) or the argument
    takes: str  # in words, from the annotation
    default: str  # as YAML writes it, "required", or "-" where seqtasks or a config group sets it
    note: str  # set by seqtasks, a config group, or the config file's comment


@dataclass(frozen=True)
class Component:
    registry: Registry
    name: str
    cls: type
    summary: str
    chosen_by: tuple[str, ...]  # group=option choices that select it
    options: tuple[Option, ...]

    @property
    def plugin(self) -> str | None:
        """The plugin package that registered it, or None for a built-in."""
        module = self.cls.__module__
        return None if module == "seqtasks" or module.startswith("seqtasks.") else module.split(".")[0]


def yaml_value(value: Any) -> str:
    """A default as a config file writes it."""
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def conf_dirs() -> list[Path]:
    """seqtasks' conf/ and the conf/ directories of installed plugins (as Hydra's search path has them)."""
    import importlib.util

    dirs = [config_dir()]
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        spec = importlib.util.find_spec(entry_point.value.split(":")[0].split(".")[0])
        for location in (spec.submodule_search_locations or []) if spec else []:
            if (Path(location) / "conf").is_dir():
                dirs.append(Path(location) / "conf")
    return dirs


def group_files(group: str) -> dict[str, Path]:
    """A config group's options -> their files, across conf_dirs."""
    files: dict[str, Path] = {}
    for directory in conf_dirs():
        for path in sorted((directory / group).glob("*.yaml")):
            files.setdefault(path.stem, path)
    return dict(sorted(files.items()))


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def option_mapping(group: str, option: str, files: dict[str, Path]) -> dict[str, Any]:
    """The keys of a group option's file, following `defaults:` entries within the same group."""
    values = load_yaml(files[option])
    if group == "task":
        values = values.get("task") or {}
    merged: dict[str, Any] = {}
    for entry in load_yaml(files[option]).get("defaults") or []:
        if isinstance(entry, str) and entry in files and entry != "_self_" and group != "task":
            merged.update(option_mapping(group, entry, files))
    merged.update({k: v for k, v in values.items() if k != "defaults"})
    return merged


def key_comments(path: Path, prefix: str = "") -> dict[str, str]:
    """`key: value  # comment` -> {key: comment}, for the keys under `prefix` (e.g. 'task'); a key with
    no comment of its own takes the comment lines written just above it."""
    comments: dict[str, str] = {}
    above: list[str] = []
    depth = 2 if prefix else 0
    inside = not prefix
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            above = []
            continue
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        if prefix and indent == 0:
            inside = stripped.startswith(f"{prefix}:")
            above = []
            continue
        match = re.match(r"([A-Za-z_][\w-]*)\s*:(.*)$", stripped)
        if inside and match and indent == depth:
            key, rest = match.groups()
            inline = re.search(r"\s#\s?(.*)$", rest)
            comment = inline.group(1).strip() if inline else " ".join(above)
            if comment:
                comments[key] = comment
        above = []
    return comments


def choices_of(registry: Registry) -> dict[str, list[tuple[str, Path]]]:
    """Registered name -> the (group=option, file) choices whose config selects it."""
    key = CONFIG_KEY[registry]
    chosen: dict[str, list[tuple[str, Path]]] = {}
    if registry is ATTENTION:  # nested in the decoder head's options
        for option, path in group_files("head").items():
            attention = option_mapping("head", option, group_files("head")).get("attention")
            if isinstance(attention, dict) and "name" in attention:
                chosen.setdefault(attention["name"], []).append((f"head={option}", path))
        return chosen
    files = group_files(key)
    for option in files:
        name = option_mapping(key, option, files).get("name")
        if isinstance(name, str):
            chosen.setdefault(name, []).append((f"{key}={option}", files[option]))
    return chosen


def component_options(registry: Registry, cls: type, files: list[Path]) -> tuple[Option, ...]:
    """Every constructor option of cls, in signature order, with the config files' comments."""
    comments: dict[str, str] = {}
    for path in files:
        for name, comment in key_comments(path, "task" if registry is TASKS else "").items():
            comments.setdefault(name, comment)
    key = CONFIG_KEY[registry]
    options = []
    for name, parameter in constructor_parameters(cls).items():
        default = "required" if parameter.default is inspect.Parameter.empty else yaml_value(parameter.default)
        if name in SET_BY_SEQTASKS or (registry is ATTENTION and name in ("query_size", "memory_size")):
            option = Option(name, f"`{name}`", describe(parameter.annotation), "-", SET_BY_SEQTASKS_NOTE)
        elif registry is TASKS and name in GROUPS:
            note = f"the `{name}` config group, handed to the task"
            option = Option(name, f"`{name}`", "an option of the group", "-", note)
        elif registry is TASKS and name in ("optimizer", "scheduler"):
            note = f"the `{name}` config group, at `task.{name}`"
            option = Option(name, f"`task.{name}`", describe(parameter.annotation), "-", note)
        else:
            takes, note = describe(parameter.annotation), comments.get(name, "")
            option = Option(name, f"`{key}.{name}`", takes, f"`{default}`", note)
        options.append(option)
    return tuple(options)


def components() -> Iterator[Component]:
    """Every registered component of every registry, the installed plugins' included."""
    load_plugins()
    for registry in ALL_REGISTRIES:
        choices = choices_of(registry)
        for name, cls in registry:
            chosen = choices.get(name, [])
            yield Component(
                registry,
                name,
                cls,
                registry.describe(name),
                tuple(choice for choice, _ in chosen),
                component_options(registry, cls, [path for _, path in chosen]),
            )


def outside_code(text: str, change) -> str:
    """`change` applied to the text outside code spans; code spans stay as they are."""
    return "".join(part if part.startswith("`") else change(part) for part in re.split(r"(`[^`]*`)", text))


def prose(text: str) -> str:
    """Plain text (a docstring or comment) as Markdown: `<root>` and `<unk>` are not HTML tags, and
    `count ** -0.75` is no emphasis."""
    return outside_code(text, lambda part: part.replace("&", "&amp;").replace("<", "&lt;").replace("*", "\\*"))


def cell(text: str) -> str:
    """Plain text for one Markdown table cell (a pipe inside a code span is no column separator)."""
    return outside_code(prose(text).replace("\n", " "), lambda part: part.replace("|", "\\|"))


def anchor(registry: Registry, name: str) -> str:
    return f"{CONFIG_KEY[registry].replace('.', '-').replace('_', '-')}-{name.replace('_', '-')}"


def component_section(component: Component) -> list[str]:
    registry, cls = component.registry, component.cls
    key = CONFIG_KEY[registry]
    lines = [f"### `{component.name}` {{ #{anchor(registry, component.name)} }}", ""]
    lines.append(prose(component.summary) or "(no description)")
    lines.append("")
    facts = [f"Class: `{cls.__module__}.{cls.__qualname__}`."]
    if component.plugin:
        facts.append(f"Registered by the plugin `{component.plugin}` (installed, so listed here).")
    if component.chosen_by:
        facts.append("Chosen by " + ", ".join(f"`{c}`" for c in component.chosen_by) + ".")
    elif registry is ATTENTION:
        facts.append(f"Chosen by `head.attention.name={component.name}`.")
    else:
        facts.append(f"No option file of the `{key}` group names it; `{key}.name={component.name}` selects it.")
    if registry is TASKS:
        metric, mode = cls.monitor
        facts.append(f"Selects checkpoints by `{metric}` ({mode}) unless `checkpoint.monitor` says otherwise.")
        heads = ", ".join(f"`{h}`" for h in HEADS.names(cls.head_sort))
        facts.append(f"Takes a head of the sort `{cls.head_sort.__name__}`: {heads}.")
    lines += [" ".join(facts), ""]
    if not component.options:
        return [*lines, "No options.", ""]
    lines += ["| option | takes | default | notes |", "| --- | --- | --- | --- |"]
    for option in component.options:
        default = option.default if option.default.startswith("`") else cell(option.default)
        lines.append(f"| {option.key} | {cell(option.takes)} | {default} | {cell(option.note)} |")
    return [*lines, ""]


def group_summary(path: Path, limit: int = 240) -> str:
    """The comment paragraph at the top of a config file (after `# @package`, before any example
    command), cut at a sentence end near `limit` characters."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#")
        if "@package" in text:
            continue
        if text.startswith("   ") or not text.strip():  # an example command, or the paragraph's end
            break
        words.append(text.strip())
    summary = " ".join(words)
    if len(summary) > limit:
        cut = max(summary.rfind(". ", 0, limit), summary.rfind("; ", 0, limit))
        summary = summary[: cut + 1] if cut > 0 else summary[:limit].rsplit(" ", 1)[0] + " ..."
    return summary.removesuffix(":").strip()


def groups_table() -> list[str]:
    lines = ["| group | option | what |", "| --- | --- | --- |"]
    registry_of = {key: registry for registry, key in CONFIG_KEY.items() if "." not in key}
    for group in [*registry_of, *OTHER_GROUPS]:
        files = group_files(group)
        for option, path in files.items():
            what = group_summary(path)
            registry = registry_of.get(group)
            if registry is not None:
                name = option_mapping(group, option, files).get("name")
                if isinstance(name, str) and name in registry:
                    link = f"[`{name}`](#{anchor(registry, name)})"
                    what = f"{link}: {what}" if what else link
            else:
                target = load_yaml(path).get("_target_")
                if target:
                    what = f"`{target}`: {what}" if what else f"`{target}`"
            lines.append(f"| `{group}` | `{option}` | {cell(what)} |")
    return lines


def reference_markdown() -> str:
    """The whole reference page."""
    everything = list(components())
    lines = [
        "# Configuration reference",
        "",
        "This page is generated from the code each time the site is built (`seqtasks/reference.py`, "
        "`python -m seqtasks.reference` prints it): every registered component, the installed plugins' included, "
        "with every option its constructor accepts. *Takes* is read from the constructor's annotation, the "
        "same annotation the registry checks each config value against before anything is built; *default* "
        "is the constructor's default (the option's config file holds the same value, which "
        "`tests/test_configs.py` checks); *notes* are the comments of that config file. An option marked "
        "*set by seqtasks* is passed by seqtasks itself, never written in a config.",
        "",
        "How to choose options and override keys: [Configuration](configuration.md).",
        "",
        "## Config groups",
        "",
        "Every option of every config group (`python -m seqtasks --help` lists them too).",
        "",
        *groups_table(),
        "",
    ]
    for registry in ALL_REGISTRIES:
        members = [c for c in everything if c.registry is registry]
        lines += [f"## {TITLE[registry]}", ""]
        if registry.base is not None:
            lines += [
                f"Registry `{registry.plural}`, base class `{registry.base.__module__}.{registry.base.__qualname__}`; "
                f"config key `{CONFIG_KEY[registry]}`.",
                "",
            ]
        for component in members:
            lines += component_section(component)
    lines += [
        "## The run's own keys",
        "",
        "`conf/config.yaml`, the top of every run's config (beside the groups above):",
        "",
        "```yaml",
        (config_dir() / "config.yaml").read_text(encoding="utf-8").rstrip(),
        "```",
        "",
        "## Commands",
        "",
    ]
    for command in COMMAND_CONFIGS:
        path = config_dir() / f"{command}.yaml"
        if path.is_file():
            lines += [
                f"### `python -m seqtasks.{command}`",
                "",
                f"`conf/{command}.yaml`:",
                "",
                "```yaml",
                path.read_text(encoding="utf-8").rstrip(),
                "```",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    text = reference_markdown()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
