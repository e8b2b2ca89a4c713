"""A task -> its ONNX graphs as bytes, and the manifest (`onnx:` in config.yaml) that names them."""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch

from seqtasks.onnx.graphs import Graph, task_graphs

OPSET = 17
FOLDER = "onnx"  # the graphs' folder inside a model directory


def graph_bytes(graph: Graph) -> bytes:
    buffer = io.BytesIO()
    graph.module.eval()  # a fresh wrapper module starts in training mode, and would trace dropout
    with warnings.catch_warnings():
        # Tracing warns at every Python-level check of a shape (argument validation in the heads);
        # the graphs are checked against PyTorch by tests/test_onnx_export.py instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph.module,
            tuple(graph.inputs.values()),
            buffer,
            input_names=list(graph.inputs),
            output_names=graph.outputs,
            dynamic_axes=graph.dynamic,
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter does not take the RNN modules' state tuples as graph inputs
        )
    return buffer.getvalue()


@torch.no_grad()
def export_onnx(task) -> tuple[dict[str, bytes], dict[str, Any]]:
    """task -> ({path inside the model directory: ONNX bytes}, manifest {kind, opset, graphs: {name:
    {file, inputs, outputs}}}). The task is put in eval mode: the graphs have no dropout."""
    task.eval()
    kind, graphs = task_graphs(task.cpu().float())
    files, manifest = {}, {"kind": kind, "opset": OPSET, "graphs": {}}
    for name, graph in graphs.items():
        path = f"{FOLDER}/{name}.onnx"
        files[path] = graph_bytes(graph)
        manifest["graphs"][name] = {"file": path, "inputs": list(graph.inputs), "outputs": graph.outputs}
    return files, manifest
