"""`quantize=int8|bf16` in predict, evaluate and serve: cheaper arithmetic for a trained model's
inference, chosen where the model runs (docs/scale.md has the measured speed and quality cost).

    int8  dynamic quantization (PyTorch's quantize_dynamic): the weights of every nn.Linear and fused
          nn.LSTM / nn.GRU / nn.RNN are stored as int8, activations are quantized per call; CPU only.
          Embeddings and everything that is not a matrix product stay fp32. Where the CPU has AMX
          int8 tiles the weights are packed for oneDNN, whose int8 products use them (PyTorch's
          default engine there, fbgemm, does not): the translation model's 64 x 256 x 8,000 output
          layer runs twice as fast.
    bf16  weights in bfloat16, and the inference blocks under torch.autocast(bfloat16): matrix
          products and recurrent layers in bf16; softmax, log-softmax and the search's scores in
          fp32. Fast only where the CPU has AMX or AVX512-BF16 (or on a GPU); elsewhere bf16 is
          emulated and slower (warned).

PyTorch's eager dynamic quantization is deprecated in favour of torchao, which is not a dependency;
it still ships with torch and is the one int8 path that quantizes the fused recurrent layers.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Set
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.errors import ConfigError
from seqtasks.runtime.precision import FAST_BF16_CPU_FLAGS, cpu_flags

log = logging.getLogger(__name__)

CHOICES = ("int8", "bf16")
QUANTIZED_MODULES = {nn.Linear, nn.LSTM, nn.GRU, nn.RNN}
AMX_INT8_FLAG = "amx_int8"


def int8_engine(flags: Set[str]) -> str:
    """The quantized engine to pack int8 weights for on a CPU with these flags: oneDNN where it has
    AMX int8 tiles, else PyTorch's default (not measured against oneDNN there, so left as it is)."""
    if AMX_INT8_FLAG in flags and "onednn" in torch.backends.quantized.supported_engines:
        return "onednn"
    return torch.backends.quantized.engine


@contextmanager
def int8_packing() -> Iterator[None]:
    """PyTorch's quantized engine set to this CPU's `int8_engine` while weights are packed, then
    restored: packed weights keep the engine they were packed for, so the global setting is not
    left changed for the rest of the process."""
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = int8_engine(cpu_flags())
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


def use_arithmetic(task, quantize: str | None, device: str = "cpu"):
    """The task (changed in place) running its inference in `quantize` arithmetic; None: fp32."""
    if quantize is None:
        return task
    if quantize not in CHOICES:
        raise ConfigError(f"quantize={quantize}: choose {' | '.join(CHOICES)} (or leave it null for fp32)")
    if quantize == "bf16":
        if device == "cpu" and not set(FAST_BF16_CPU_FLAGS) & cpu_flags():
            flags = " nor ".join(FAST_BF16_CPU_FLAGS)
            log.warning("quantize=bf16: this CPU has neither %s, so bf16 is emulated: slower than fp32", flags)
        task.inference_dtype = torch.bfloat16
        # Weights cast once, not by autocast at every call (13% of a bf16 beam search's time); autocast
        # still casts float inputs (images, carried states) and keeps softmax-like ops in fp32.
        return task.to(torch.bfloat16)
    if device != "cpu":
        raise ConfigError(f"quantize=int8 runs on the CPU (dynamic quantization); device={device}: use quantize=bf16")
    # Deprecated, see the module docstring; the quantized recurrent layers warn at every first call.
    warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic

        with int8_packing():
            return quantize_dynamic(task.eval(), QUANTIZED_MODULES, dtype=torch.qint8, inplace=True)


def output_rows(layer: nn.Module, rows: Tensor) -> Callable[[Tensor], Tensor]:
    """A linear layer cut to some of its outputs, in the arithmetic it runs in (fp32 or bf16, or
    int8 after quantize_dynamic): rows (V',) -> x (N, E) -> (N, V'). The rows are taken once; an
    int8 layer's rows keep their int8 values and scale, so the cut layer computes what the whole
    one computes for them."""
    if isinstance(layer, nn.Linear):
        weight, bias = layer.weight[rows], None if layer.bias is None else layer.bias[rows]  # (V', E), (V',)
        return lambda x: F.linear(x, weight, bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    if isinstance(layer, DynamicLinear):
        bias = layer.bias()
        with int8_packing():  # for the engine the whole layer was packed for: its speed, not its values
            cut = DynamicLinear(layer.in_features, len(rows), dtype=torch.qint8)
            cut.set_weight_bias(layer.weight()[rows], None if bias is None else bias[rows])
        return cut
    raise ConfigError(f"a vocabulary shortlist cuts a linear output layer; this model's is {type(layer).__name__}")
