"""ONNX export of trained models and an onnxruntime-backed runtime (`seqtasks.export format=onnx`).

    recurrence.py  padded-batch RNN runs that trace to plain ONNX ops (no packed sequences)
    graphs.py      the exported graphs of each task, as nn.Modules over the task's own modules
    state.py       nested decoder states <-> flat named graph inputs/outputs
    export.py      task -> {file name: ONNX bytes} and the manifest written into config.yaml
    runtime.py     onnxruntime sessions: OnnxGraph (named tensors in, out), OnnxStep (the decoding
                   step_function contract of seqtasks.decoding over a session)
    backend.py     backend=onnxruntime of predict, evaluate and serve: a task's inference bound to its graphs

Needs the `onnx` extra (onnx, onnxruntime, onnxscript); nothing here is imported by training.
"""
