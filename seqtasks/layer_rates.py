"""ULMFiT's discriminative fine-tuning (Howard and Ruder 2018): each layer its own learning rate,
the top layer the base rate and every layer below it the rate of the layer above / decay, so
that fine-tuning moves the general, low layers less than the task-specific top. And its gradual
unfreezing: the top layer trains alone first, and one more layer joins, from the top down, every
few epochs, so that the freshly initialised head does not wreck the pretrained layers below it
while its own gradients are still large and random.

Layers, bottom to top: depth 0 the embeddings (top-level modules whose name ends in "embedding"),
depth 1..L the encoder's recurrent layers (the fused modules' `_l<k>` parameters, the reference
cells' `layers.<k>`), depth L + 1 everything else (the head). A task without an `encoder` has
depths 0 and 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

LAYER = re.compile(r"(?:_l|layers\.)(\d+)")


def depth(name: str, encoder_layers: int) -> int:
    """A parameter's depth, from its name in the task (e.g. encoder.rnn.weight_hh_l1 -> 2)."""
    top = name.split(".", 1)[0]
    if top.endswith("embedding"):
        return 0
    if top == "encoder":
        found = LAYER.search(name)
        return 1 + (int(found.group(1)) if found else 0)
    return encoder_layers + 1


def parameter_groups(
    named: Iterable[tuple[str, nn.Parameter]], lr: float, decay: float, encoder_layers: int
) -> list[dict]:
    """Optimizer parameter groups, one per depth with parameters: lr / decay ** (top - depth)."""
    top = encoder_layers + 1
    groups: dict[int, list[nn.Parameter]] = {}
    for name, param in named:
        groups.setdefault(depth(name, encoder_layers), []).append(param)
    return [{"params": params, "lr": lr / decay ** (top - d)} for d, params in sorted(groups.items())]


def unfrozen(name: str, encoder_layers: int, epoch: int, every: int) -> bool:
    """Gradual unfreezing: whether a parameter trains in `epoch` (0-based) when one more layer joins
    every `every` epochs: the top layer alone in the first `every` epochs, all of them in the end."""
    return depth(name, encoder_layers) >= encoder_layers + 1 - epoch // every
