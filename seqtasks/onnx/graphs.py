"""The graphs each task exports, as nn.Modules over the task's own (trained) modules.

A Graph pairs a module with example inputs (their names and order are the module's forward
arguments), its output names, and which axes are dynamic. The recurrent encoders run through
UnpackedRNN (recurrence.py), never through packed sequences; decoding steps carry their state as
flat named tensors (state.py): inputs `state.<path>`, outputs `next_state.<path>`.

    classification  classifier: tokens (B, T), lengths (B,) -> logits (B, C)
    tagging         tagger: words (B, T), lengths (B,), chars (U, C), char_lengths (U,), forms (B, T)
                    -> emissions (B, T, K) (a CRF head's Viterbi runs outside, over these)
    language_model  step: tokens (B,), state.* -> log_probs (B, V), next_state.*
    translation     encoder: source (B, S), lengths (B,) -> state.* (the decoder's initial state)
                    step: tokens (B,), state.* -> log_probs (B, V), next_state.* (the parts a step changes)
    captioning      image_grid: inputs (images (B, 3, H, W) uint8, or features (B, R, F) and regions (B,))
                    -> grid (B, R, D), mask (B, R)
                    start: grid, mask -> state.* (the decoder's initial state; guidance starts a second
                    one from an all-zero grid: CaptioningTask.search_state)
                    step: as translation's
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from seqtasks.errors import ConfigError
from seqtasks.onnx.recurrence import UnpackedRNN
from seqtasks.onnx.state import flatten_state, unflatten_state
from seqtasks.tensors import PER_INPUT, lengths_mask

STATE, NEXT_STATE = "state", "next_state"
BATCH, STEPS = 3, 5  # the traced examples' batch and length (every graph's batch and time axes are dynamic)
# State entries held once per source (memory, keys, mask: as long as the source, dim 1). Beam search
# passes the step graph K hypotheses per source, so their batch axis has a name of its own.
PER_SOURCE = f"{STATE}.{PER_INPUT}."


def state_axes(names: list[str]) -> dict[str, dict[int, str]]:
    """Dynamic axes of state tensors: the batch (of sources or of hypotheses), and the source length."""
    return {name: {0: "sources", 1: "source_time"} if name.startswith(PER_SOURCE) else {0: "batch"} for name in names}


@dataclass
class Graph:
    module: nn.Module  # forward(*inputs in the order of `inputs`) -> a tuple in the order of `outputs`
    inputs: dict[str, Tensor]  # example inputs
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)  # name -> {axis: symbolic size}


def unpacked(encoder: nn.Module) -> UnpackedRNN:
    """A RecurrentEncoder's fused module, rerun without packing (reference cells have no ONNX form here)."""
    if not isinstance(getattr(encoder, "rnn", None), nn.RNNBase):
        raise ConfigError("format=onnx exports fused encoders only (encoder.implementation=fused)")
    return UnpackedRNN(encoder.rnn)


def example_lengths(batch: int, steps: int) -> Tensor:
    """Lengths T, T-1, ... (at least 1): (B,). An example with padding traces its handling too."""
    return torch.clamp(torch.arange(steps, steps - batch, -1), min=1)


def padded_example(batch: int, steps: int, vocab: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """Token ids (B, T) with example_lengths, padding after them."""
    lengths = example_lengths(batch, steps)  # (B,)
    tokens = torch.randint(1, vocab, (batch, steps))
    return tokens.masked_fill(~lengths_mask(lengths, steps), pad_id), lengths


class ClassifierGraph(nn.Module):
    def __init__(self, task):
        super().__init__()
        self.embedding, self.rnn, self.head = task.embedding, unpacked(task.encoder), task.head
        self.ngrams = task.ngrams

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        states, _ = self.rnn(self.embedding(tokens), lengths)  # (B, T, H)
        logits = self.head(states, lengths)  # (B, C)
        return logits if self.ngrams is None else logits + self.ngrams(tokens, lengths)


class TaggerGraph(nn.Module):
    def __init__(self, task):
        super().__init__()
        self.word_embedding, self.head = task.word_embedding, task.head
        self.char_embedding = task.char_encoder.embedding if task.char_encoder is not None else None
        self.char_rnn = UnpackedRNN(task.char_encoder.rnn) if task.char_encoder is not None else None
        self.rnn = unpacked(task.encoder)

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor, char_lengths: Tensor, forms: Tensor) -> Tensor:
        parts = [self.word_embedding(words)] if self.word_embedding is not None else []  # (B, T, E)
        if self.char_rnn is not None:
            _, per_form = self.char_rnn(self.char_embedding(chars), char_lengths)  # (U, 2Hc)
            parts.append(per_form[forms])  # (B, T, 2Hc)
        states, _ = self.rnn(torch.cat(parts, dim=-1), lengths)  # (B, T, H)
        return self.head(states)  # (B, T, K)


class StepGraph(nn.Module):
    """step(tokens, state) -> (log_probs, state) with the state flattened; only the `changed` top-level
    entries are outputs (None: all), so memory and keys are not copied out at every step."""

    def __init__(self, owner: nn.Module, method: str, names: list[str], changed: tuple[str, ...] | None = None):
        super().__init__()
        # The owner is a submodule, so its weights are the graph's parameters (a bound method alone
        # would make the tracer meet them as constants).
        self.owner, self.method, self.names, self.changed = owner, method, names, changed

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        log_probs, new = getattr(self.owner, self.method)(
            tokens, unflatten_state(dict(zip(self.names, state, strict=True)), STATE)
        )
        if self.changed is not None:
            new = {key: new[key] for key in self.changed if key in new}
        return (log_probs, *flatten_state(new, NEXT_STATE).values())


class EncoderGraph(nn.Module):
    """Translation's encode(), packing replaced: source (B, S), lengths (B,) -> the flat initial state."""

    def __init__(self, task):
        super().__init__()
        self.embedding, self.rnn, self.decoder = task.embedding, unpacked(task.encoder), task.decoder

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        memory, summary = self.rnn(self.embedding(source), lengths)  # (B, S, He), (B, He)
        state = self.decoder.initial_state(memory, lengths_mask(lengths, source.shape[1]), summary)
        return tuple(flatten_state(state, STATE).values())


class ImageGridGraph(nn.Module):
    """Captioning's image_grid(): inputs (and regions, for features) -> grid (B, R, D), mask (B, R)."""

    def __init__(self, task):
        super().__init__()
        self.task = task  # a submodule: the image encoder's weights become the graph's parameters

    def forward(self, inputs: Tensor, regions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.task.image_grid(inputs, regions)


class StartGraph(nn.Module):
    """Captioning's start(): grid (B, R, D), mask (B, R) -> the decoder's flat initial state. Apart
    from image_grid, so that guidance can start the image-free branch from a zero grid too."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, grid: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        return tuple(flatten_state(self.task.start(grid, mask), STATE).values())


def step_graph(
    owner: nn.Module, method: str, state: Any, tokens: Tensor, changed: tuple[str, ...] | None = None
) -> Graph:
    flat = flatten_state(state, STATE)
    module = StepGraph(owner, method, list(flat), changed)
    with torch.no_grad():
        outputs = module(tokens, *flat.values())
        names = ["log_probs", *flatten_state(_changed(getattr(owner, method)(tokens, state)[1], changed), NEXT_STATE)]
    assert len(names) == len(outputs)
    dynamic = state_axes(["tokens", *flat, *names])
    return Graph(module, {"tokens": tokens, **flat}, names, dynamic)


def _changed(state: Any, changed: tuple[str, ...] | None) -> Any:
    return state if changed is None else {key: state[key] for key in changed if key in state}


def classifier_graphs(task) -> dict[str, Graph]:
    tokens, lengths = padded_example(BATCH, STEPS, len(task.text_tokenizer), task.text_tokenizer.vocab.pad_id)
    axes = {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}}
    return {"classifier": Graph(ClassifierGraph(task), {"tokens": tokens, "lengths": lengths}, ["logits"], axes)}


def tagger_graphs(task) -> dict[str, Graph]:
    words, lengths = padded_example(BATCH, STEPS, len(task.words), task.words.vocab.pad_id)
    chars, char_lengths = padded_example(4, 6, len(task.chars), task.chars.vocab.pad_id)
    forms = torch.randint(0, 4, (BATCH, STEPS))
    inputs = {"words": words, "lengths": lengths, "chars": chars, "char_lengths": char_lengths, "forms": forms}
    axes = {
        "words": {0: "batch", 1: "time"},
        "lengths": {0: "batch"},
        "chars": {0: "forms", 1: "characters"},
        "char_lengths": {0: "forms"},
        "forms": {0: "batch", 1: "time"},
        "emissions": {0: "batch", 1: "time"},
    }
    return {"tagger": Graph(TaggerGraph(task), inputs, ["emissions"], axes)}


def language_model_graphs(task) -> dict[str, Graph]:
    tokens = torch.randint(0, len(task.tokenizer), (BATCH,))
    with torch.no_grad():
        _, state = task.step_function(tokens, None)  # the state's structure and sizes
    return {"step": step_graph(task, "step_function", state, tokens)}


def translation_graphs(task) -> dict[str, Graph]:
    source, lengths = padded_example(BATCH, STEPS, len(task.source_tokenizer), task.source_tokenizer.vocab.pad_id)
    with torch.no_grad():
        state = task.encode(source, lengths)  # what the encoder graph outputs, flattened: example step inputs
    names = list(flatten_state(state, STATE))
    axes = {"source": {0: "batch", 1: "source_time"}, "lengths": {0: "batch"}, **state_axes(names)}
    return {
        "encoder": Graph(EncoderGraph(task), {"source": source, "lengths": lengths}, names, axes),
        **decoder_step_graph(task, state),
    }


def captioning_graphs(task) -> dict[str, Graph]:
    if task.inputs["kind"] == "image":
        side = task.inputs["image_size"]
        inputs = {"inputs": torch.randint(0, 256, (BATCH, task.inputs["size"], side, side), dtype=torch.uint8)}
        axes = {"inputs": {0: "batch"}}
    else:  # features: as many regions as the longest of the batch, padded with zeros
        regions = example_lengths(BATCH, STEPS)  # (B,)
        features = torch.randn(BATCH, STEPS, task.inputs["size"]) * lengths_mask(regions, STEPS)[..., None]
        inputs = {"inputs": features, "regions": regions}
        axes = {"inputs": {0: "batch", 1: "regions"}, "regions": {0: "batch"}}
    grid_axes = {"grid": {0: "batch", 1: "source_time"}, "mask": {0: "batch", 1: "source_time"}}
    with torch.no_grad():
        grid, mask = task.image_grid(inputs["inputs"], inputs.get("regions"))
        state = task.start(grid, mask)
    names = list(flatten_state(state, STATE))
    return {
        "image_grid": Graph(ImageGridGraph(task), inputs, ["grid", "mask"], {**axes, **grid_axes}),
        "start": Graph(StartGraph(task), {"grid": grid, "mask": mask}, names, {**grid_axes, **state_axes(names)}),
        **decoder_step_graph(task, state),
    }


def decoder_step_graph(task, state: dict[str, Any]) -> dict[str, Graph]:
    """The RecurrentDecoder's step of translation and captioning, from an initial state of the batch."""
    tokens = torch.full((BATCH,), task.bos_id)
    return {"step": step_graph(task.decoder, "step", state, tokens, changed=("rnn", "feed"))}


def task_graphs(task) -> tuple[str, dict[str, Graph]]:
    """The task's kind and its graphs by name, traced from small examples (task in eval mode)."""
    from seqtasks.tasks.captioning import CaptioningTask
    from seqtasks.tasks.classification import ClassificationTask
    from seqtasks.tasks.language_model import LanguageModelTask
    from seqtasks.tasks.tagging import TaggingTask
    from seqtasks.tasks.translation import TranslationTask

    kinds = (
        (ClassificationTask, "classifier", classifier_graphs),
        (TaggingTask, "tagger", tagger_graphs),
        (LanguageModelTask, "language_model", language_model_graphs),
        (TranslationTask, "encoder_decoder", translation_graphs),
        (CaptioningTask, "captioning", captioning_graphs),
    )
    for task_class, kind, graphs in kinds:
        if isinstance(task, task_class):
            return kind, graphs(task)
    raise ConfigError(
        f"format=onnx exports classification, tagging, language_model, translation and captioning models, not "
        f"'{task.registered_name}'; export it with format=safetensors"
    )
