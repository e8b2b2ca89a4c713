"""onnxruntime sessions behind the interfaces the PyTorch models offer: OnnxGraph runs a graph on
named torch tensors; OnnxStep is a decoding step_function (seqtasks/decoding/base.py) over a step
graph, so greedy, beam and sampling run unchanged on it; onnx_graphs opens a model directory's graphs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from seqtasks.onnx.graphs import NEXT_STATE, STATE
from seqtasks.onnx.state import flatten_state, unflatten_state


class OnnxGraph:
    """One ONNX graph in an onnxruntime CPU session: {input name: Tensor} -> {output name: Tensor}."""

    def __init__(self, model: str | Path | bytes, threads: int | None = None):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.inputs = [node.name for node in self.session.get_inputs()]
        self.outputs = [node.name for node in self.session.get_outputs()]

    def __call__(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        # The exporter drops inputs a graph never reads (a decoder without attention has no memory).
        feeds = {name: np.ascontiguousarray(tensors[name].detach().cpu().numpy()) for name in self.inputs}
        arrays = self.session.run(None, feeds)
        return {name: torch.from_numpy(array) for name, array in zip(self.outputs, arrays, strict=True)}

    def zero_state(self, batch: int) -> dict[str, Tensor]:
        """Zeros for every state input (batch, *the graph's fixed sizes): what a None state means."""
        return {
            node.name: torch.zeros((batch, *node.shape[1:]), dtype=torch.float)
            for node in self.session.get_inputs()
            if node.name.startswith(STATE)
        }


class OnnxStep:
    """step(tokens (B,), state) -> (log_probs (B, V), state): the step graph run by onnxruntime. The
    state is the same nested, batch-first structure the PyTorch step uses (None: zeros), so beam
    search repeats and reorders it as usual; entries the graph does not output pass through."""

    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def __call__(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        flat = self.graph.zero_state(tokens.shape[0]) if state is None else flatten_state(state, STATE)
        out = self.graph({"tokens": tokens, **flat})
        changed = {STATE + name[len(NEXT_STATE) :]: t for name, t in out.items() if name.startswith(NEXT_STATE)}
        return out["log_probs"].to(tokens.device), unflatten_state({**flat, **changed}, STATE)

    def encode(self, encoder: OnnxGraph, inputs: dict[str, Tensor]) -> Any:
        """An encoder graph's outputs (state.*) as the nested state this step starts from."""
        return unflatten_state(encoder(inputs), STATE)


def onnx_graphs(directory: Path, threads: int | None = None) -> tuple[dict[str, Any], dict[str, OnnxGraph]]:
    """A model directory exported with format=onnx -> (its manifest, a session per graph), digests checked."""
    from seqtasks.runtime.model_dir import read_onnx

    manifest, paths = read_onnx(directory)
    return manifest, {name: OnnxGraph(path, threads) for name, path in paths.items()}
