"""Decoder states (a Tensor, or nested tuples / dicts of Tensors, batch on dim 0: the contract of
seqtasks/decoding/base.py) as flat, named graph inputs and outputs, and back.

A name is the path to its tensor, joined by '.': {"rnn": (h, c), "memory": m} <-> "rnn.0", "rnn.1",
"memory". Tuple positions are digits, so unflatten can rebuild tuples from the names alone.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor


def flatten_state(state: Any, prefix: str) -> dict[str, Tensor]:
    """Nested state -> {path: tensor}, in a fixed order (dict keys sorted, tuples by position)."""
    if isinstance(state, Tensor):
        return {prefix: state}
    if isinstance(state, dict):
        items = sorted(state.items())
    elif isinstance(state, tuple | list):
        items = [(str(i), part) for i, part in enumerate(state)]
    else:
        raise TypeError(f"a decoder state holds Tensors, tuples and dicts; {prefix} is {type(state).__name__}")
    flat: dict[str, Tensor] = {}
    for key, part in items:
        flat.update(flatten_state(part, f"{prefix}.{key}"))
    return flat


def unflatten_state(flat: dict[str, Tensor], prefix: str) -> Any:
    """{path: tensor} (as flatten_state wrote it under prefix) -> the nested state."""
    if prefix in flat:
        return flat[prefix]
    children: dict[str, dict[str, Tensor]] = {}
    for name, tensor in flat.items():
        if name.startswith(prefix + "."):
            key = name[len(prefix) + 1 :].split(".", 1)[0]
            children.setdefault(key, {})[name] = tensor
    if not children:
        raise KeyError(f"no tensor named {prefix} or under it")
    if all(key.isdigit() for key in children):
        return tuple(unflatten_state(children[key], f"{prefix}.{key}") for key in sorted(children, key=int))
    return {key: unflatten_state(part, f"{prefix}.{key}") for key, part in children.items()}
