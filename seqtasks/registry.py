"""One registry mechanism for every kind of component.

Each kind (encoders, heads, attention, tasks, tokenizers, datasets, decoding strategies) has one `Registry`
instance. Classes register where they are defined::

    @ENCODERS.register("lstm")
    class LSTMEncoder(RecurrentEncoder):
        '''LSTM over the whole sequence (fused kernel).'''

A duplicate name fails at import; an unknown name fails when the config is built, listing the
valid choices and the closest match; unknown constructor options fail the same way.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from seqtasks.errors import ConfigError


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _constructor_parameters(cls: type) -> tuple[list[str], list[str]]:
    """Names a class's constructor accepts, and those without default, following `**options`
    up the class hierarchy (a subclass that adds one option and passes the rest to its base)."""
    accepted: list[str] = []
    required: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        forwards = False
        for name, param in inspect.signature(klass.__init__).parameters.items():
            if name == "self" or param.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                forwards = True
            elif name not in accepted:
                accepted.append(name)
                if param.default is inspect.Parameter.empty:
                    required.append(name)
        if not forwards:
            break
    return accepted, required


class Registry:
    """Names -> classes for one kind of component."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator: make `cls` buildable as `name`."""

        def decorate(cls: type) -> type:
            if name in self._classes:
                other = self._classes[name]
                raise ConfigError(
                    f"{self.kind} '{name}' is registered twice: by {other.__module__}.{other.__qualname__} "
                    f"and by {cls.__module__}.{cls.__qualname__}"
                )
            self._classes[name] = cls
            cls.registered_name = name
            return cls

        return decorate

    def get(self, name: str) -> type:
        if name not in self._classes:
            choices = sorted(self._classes)
            raise ConfigError(
                f"unknown {self.kind} '{name}'; choose from: {', '.join(choices)}{_did_you_mean(name, choices)}"
            )
        return self._classes[name]

    def build(self, config: Mapping[str, Any], **extra: Any) -> Any:
        """Build from a config mapping whose `name` picks the class and whose other keys are the
        constructor's arguments. `extra` passes sizes that flow forward (e.g. `input_size`)."""
        options = {k: v for k, v in dict(config).items() if k != "name"}
        if "name" not in config:
            raise ConfigError(f"{self.kind} config has no 'name'; choose from: {', '.join(self.names())}")
        cls = self.get(config["name"])
        self.check_options(cls, {**options, **extra})
        return cls(**options, **extra)

    def check_options(self, cls: type, options: Mapping[str, Any]) -> None:
        accepted, required = _constructor_parameters(cls)
        for key in options:
            if key not in accepted:
                raise ConfigError(
                    f"{self.kind} '{cls.registered_name}' has no option '{key}'; valid options: "
                    f"{', '.join(accepted)}{_did_you_mean(key, accepted)}"
                )
        missing = [name for name in required if name not in options]
        if missing:
            raise ConfigError(f"{self.kind} '{cls.registered_name}' needs option(s): {', '.join(missing)}")

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[tuple[str, type]]:
        return iter(sorted(self._classes.items()))

    def describe(self, name: str) -> str:
        """The first line of the class docstring."""
        doc = inspect.getdoc(self._classes[name]) or ""
        return doc.splitlines()[0] if doc else ""


ENCODERS = Registry("encoder")
HEADS = Registry("head")
TASKS = Registry("task")
TOKENIZERS = Registry("tokenizer")
DATASETS = Registry("dataset")
DECODING = Registry("decoding strategy", plural="decoding strategies")
ATTENTION = Registry("attention", plural="attention")

ALL_REGISTRIES = (TASKS, DATASETS, TOKENIZERS, ENCODERS, HEADS, ATTENTION, DECODING)
