"""One registry mechanism for every kind of component.

Each kind (encoders, image encoders, heads, attention, tasks, tokenizers, datasets, decoding strategies) has one
`Registry` instance. The kind's base class declares itself, and classes register where they are
defined::

    @ENCODERS.base_class
    class RecurrentEncoder(nn.Module): ...

    @ENCODERS.register("lstm")
    class LSTMEncoder(RecurrentEncoder):
        '''LSTM over the whole sequence (fused kernel).'''

A duplicate name, or a class that does not derive from the kind's base, fails at import. Before
anything is built, `check` validates a config: an unknown name lists the valid choices and the
closest match; an unknown option names the closest valid one; every value is checked against the
constructor's annotation (`seqtasks.configuration.validation`); a component of the wrong sort for its user
(`sort=TaggerHead` for the tagging task) lists the registered ones that fit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from seqtasks.configuration.validation import check_value, did_you_mean, parameter_annotations
from seqtasks.errors import ConfigError


@functools.cache
def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The options a class's constructor accepts, following `**options` up the class hierarchy (a
    subclass that adds a few options and passes the rest to its base), each with its annotation
    resolved (`Parameter.annotation`)."""
    accepted: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        annotations = parameter_annotations(klass.__init__)
        forwards = False
        for name, param in inspect.signature(klass.__init__).parameters.items():
            if name == "self" or param.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                forwards = True
            elif name not in accepted:
                accepted[name] = param.replace(annotation=annotations.get(name, Any))
        if not forwards:
            break
    return accepted


def check_arguments(
    cls: type, options: Mapping[str, Any], path: str | None = None, what: str | None = None, given: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Validate constructor arguments from a config against cls's signature -> them as a dict: an
    unknown key names the closest valid one, every value is checked against its annotation, and a
    required argument left out is named. `given`: arguments the builder passes itself."""
    prefix = f"{path}." if path else ""
    what = what or f"'{path or cls.__name__}'"
    if not isinstance(options, Mapping):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping of options; got {options!r}")
    accepted = constructor_parameters(cls)
    for key, value in options.items():
        if key not in accepted:
            raise ConfigError(
                f"{what} has no option '{prefix}{key}'; valid options: "
                f"{', '.join(accepted)}{did_you_mean(key, accepted)}"
            )
        check_value(f"{prefix}{key}", value, accepted[key].annotation)
    missing = [
        name
        for name, param in accepted.items()
        if param.default is inspect.Parameter.empty and name not in options and name not in given
    ]
    if missing:
        raise ConfigError(f"{what} needs option(s): {', '.join(prefix + name for name in missing)}")
    return dict(options)


class Registry:
    """Names -> classes for one kind of component."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.base: type | None = None
        self._classes: dict[str, type] = {}

    def base_class(self, cls: type) -> type:
        """Class decorator: every component of this kind must derive from `cls`."""
        self.base = cls
        return cls

    def register(self, name: str):
        """Class decorator: make `cls` buildable as `name`."""

        def decorate(cls: type) -> type:
            if name in self._classes:
                other = self._classes[name]
                raise ConfigError(
                    f"{self.kind} '{name}' is registered twice: by {other.__module__}.{other.__qualname__} "
                    f"and by {cls.__module__}.{cls.__qualname__}"
                )
            if self.base is not None and not issubclass(cls, self.base):
                raise ConfigError(
                    f"{self.kind} '{name}' ({cls.__module__}.{cls.__qualname__}) must derive from "
                    f"{self.base.__module__}.{self.base.__qualname__}"
                )
            self._classes[name] = cls
            cls.registered_name = name
            return cls

        return decorate

    def names(self, sort: type | None = None) -> list[str]:
        """Registered names, alphabetically; with `sort`, only the classes that derive from it."""
        return sorted(name for name, cls in self._classes.items() if sort is None or issubclass(cls, sort))

    def get(self, name: str, sort: type | None = None, path: str | None = None, user: str | None = None) -> type:
        """The class registered as `name`; with `sort`, it must derive from that class (`user`, e.g.
        "task 'tagging'", is who needs it). Errors list the valid choices."""
        where = f" ({path}.name)" if path else ""
        if name not in self._classes:
            choices = self.names(sort)
            raise ConfigError(
                f"unknown {self.kind} '{name}'{where}; choose from: {', '.join(choices)}{did_you_mean(name, choices)}"
            )
        cls = self._classes[name]
        if sort is not None and not issubclass(cls, sort):
            raise ConfigError(
                f"{user or 'this component'} cannot use {self.kind} '{name}'{where}: it needs a "
                f"{sort.__name__}; choose from: {', '.join(self.names(sort))}"
            )
        return cls

    def check(
        self,
        config: Mapping[str, Any],
        path: str | None = None,
        sort: type | None = None,
        user: str | None = None,
        given: tuple[str, ...] = (),
    ) -> type:
        """Validate a config mapping (its `name` picks the class, the other keys are constructor
        arguments) without building anything; -> the class. `given` names the arguments that the
        builder passes itself (sizes that flow forward), which the config need not hold."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"{path or self.kind}: expected a mapping with a 'name'; got {config!r}")
        if "name" not in config:
            raise ConfigError(f"{path or self.kind} config has no 'name'; choose from: {', '.join(self.names(sort))}")
        cls = self.get(config["name"], sort, path, user)
        options = {k: v for k, v in config.items() if k != "name"}
        check_arguments(cls, options, path, f"{self.kind} '{cls.registered_name}'", given)
        return cls

    def build(
        self,
        config: Mapping[str, Any],
        path: str | None = None,
        sort: type | None = None,
        user: str | None = None,
        **extra: Any,
    ) -> Any:
        """Check `config` (see `check`), then build it; `extra` passes sizes that flow forward (e.g.
        `input_size`)."""
        cls = self.check(config, path, sort, user, given=tuple(extra))
        options = {k: v for k, v in dict(config).items() if k != "name"}
        clashes = sorted(set(options) & set(extra))
        if clashes:
            prefix = f"{path}." if path else ""
            raise ConfigError(
                f"{', '.join(prefix + key for key in clashes)}: set by seqtasks itself (it flows "
                "forward from the data or the other components); drop it from the config"
            )
        unknown = [key for key in extra if key not in constructor_parameters(cls)]
        if unknown:
            raise ConfigError(f"{self.kind} '{cls.registered_name}' takes no {', '.join(unknown)}")
        return cls(**options, **extra)

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
IMAGE_ENCODERS = Registry("image encoder", plural="image_encoders")

ALL_REGISTRIES = (TASKS, DATASETS, TOKENIZERS, ENCODERS, IMAGE_ENCODERS, HEADS, ATTENTION, DECODING)
