"""The base class of the `heads` registry. Each sort of head has a base of its own that a task asks
for by class (`HEADS.build(..., sort=TaggerHead)`), so a head of the wrong sort fails before
training, listing those that fit: `LanguageModelHead` (next-token logits per state: language
models, generation), `SequenceClassifier` (one label per sequence), `TaggerHead` (one tag per
state), `RecurrentDecoder` (a target-side decoder for encoder-decoder tasks)."""

from __future__ import annotations

from torch import nn

from seqtasks.configuration.registry import HEADS


@HEADS.base_class
class Head(nn.Module):
    """What turns encoder states into predictions."""
