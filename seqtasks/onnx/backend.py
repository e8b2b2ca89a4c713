"""`backend=onnxruntime` of predict, evaluate and serve: a restored task whose tensor math runs on
the ONNX graphs of its exported directory. Only the methods that compute with the network are
rebound (an instance attribute shadows the method of the same name); the task's tokenizers,
batching, search (greedy, beam and sampling over OnnxStep) and detokenisation run unchanged.

    classifier       task.forward: tokens, lengths -> logits
    tagger           task.emissions: batch -> emissions (the head's argmax or CRF Viterbi, and its
                     loss, run in PyTorch over them)
    language_model   task.step_function (OnnxStep), and task.prime_state reads the prime one step
                     at a time through it
    encoder_decoder  task.encode (encoder graph), task.decoder.step (OnnxStep); a vocabulary
                     shortlist (decoder.step_within, PyTorch only) is refused
    captioning       task.image_grid, task.start, task.decoder.step; classifier-free guidance stays
                     GuidedStep's Python combination of two OnnxStep runs (the image-free branch
                     starts from the start graph on a zero grid)

What has no graph keeps running the PyTorch weights that the directory holds too
(model.safetensors): the teacher-forced decoder pass of translation and captioning (evaluate's
loss and perplexity, the attention replay of predict's attention= and the attention figures), and
`seqtasks.inspect`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqtasks.errors import ConfigError
from seqtasks.onnx.runtime import OnnxGraph, OnnxStep, onnx_graphs
from seqtasks.runtime.model_dir import CONFIG, ONNX, read_config


def run_on_onnxruntime(task, directory: Path):
    """The task (restored from `directory`) with its graphs bound in; onnxruntime takes as many
    threads as PyTorch's intra-op pool (torch.set_num_threads)."""
    if not (directory / CONFIG).is_file() or ONNX not in read_config(directory / CONFIG):
        raise ConfigError(
            f"backend=onnxruntime runs the ONNX graphs of an exported model directory, and {directory} has "
            f"none: export it with python -m seqtasks.export ckpt={directory} output=<dir> format=onnx"
        )
    manifest, graphs = onnx_graphs(directory, threads=torch.get_num_threads())
    BINDERS[manifest["kind"]](task, graphs)
    return task


def bind_classifier(task, graphs: dict[str, OnnxGraph]) -> None:
    classifier = graphs["classifier"]
    task.forward = lambda tokens, lengths: classifier({"tokens": tokens, "lengths": lengths})["logits"]  # (B, C)


def bind_tagger(task, graphs: dict[str, OnnxGraph]) -> None:
    tagger = graphs["tagger"]
    task.emissions = lambda batch: tagger({name: getattr(batch, name) for name in tagger.inputs})["emissions"]


def bind_language_model(task, graphs: dict[str, OnnxGraph]) -> None:
    task.step_function = OnnxStep(graphs["step"])
    task.prime_state = stepped_prime(task.step_function)


def stepped_prime(step: OnnxStep) -> Callable[[Tensor], Any]:
    """prime ids (1, P) -> the state after them, one step graph run per token (None for P = 0)."""

    def prime_state(prime_ids: Tensor) -> Any:
        state = None
        for token in prime_ids.T:  # (1,) each
            _, state = step(token, state)
        return state

    return prime_state


def bind_encoder_decoder(task, graphs: dict[str, OnnxGraph]) -> None:
    step = task.decoder.step = OnnxStep(graphs["step"])
    task.encode = lambda source, lengths: step.encode(graphs["encoder"], {"source": source, "lengths": lengths})
    task.decoder.step_within = refuse_shortlist


def refuse_shortlist(vocabulary: Tensor) -> Any:
    # A shortlist slices the PyTorch output layer (RecurrentDecoder.step_within): it would decode
    # on PyTorch, not on the step graph, without a word.
    raise ConfigError("a vocabulary shortlist decodes with the PyTorch decoder: not with backend=onnxruntime")


def bind_captioning(task, graphs: dict[str, OnnxGraph]) -> None:
    step = task.decoder.step = OnnxStep(graphs["step"])

    def image_grid(inputs: Tensor, regions: Tensor | None) -> tuple[Tensor, Tensor]:
        # An image graph has no regions input: OnnxGraph feeds only the inputs a graph has.
        out = graphs["image_grid"]({"inputs": inputs, "regions": regions})
        return out["grid"], out["mask"]  # (B, R, D), (B, R)

    task.image_grid = image_grid
    task.start = lambda grid, mask: step.encode(graphs["start"], {"grid": grid, "mask": mask})


# The manifest's kind (seqtasks/onnx/graphs.py task_graphs) -> what binds its graphs into the task.
BINDERS: dict[str, Callable[[Any, dict[str, OnnxGraph]], None]] = {
    "classifier": bind_classifier,
    "tagger": bind_tagger,
    "language_model": bind_language_model,
    "encoder_decoder": bind_encoder_decoder,
    "captioning": bind_captioning,
}
