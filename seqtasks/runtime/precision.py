"""`trainer.precision: auto`: bf16 mixed precision where the hardware does bf16 fast, fp32 elsewhere.

Fast bf16 means a GPU that supports it, or a CPU with AMX (Intel Sapphire Rapids and later) or
AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake): there oneDNN runs bf16 matrix work natively.
Elsewhere bf16 is emulated, slower than fp32, and oneDNN may have no bf16 LSTM kernel at all, so
a setting chosen on one machine must not travel to another: the choice is made where the run runs.
"""

from __future__ import annotations

from collections.abc import Set
from functools import cache
from pathlib import Path

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info

FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@cache  # read once per process: a shortlist's int8 cut asks at every batch, and cpuinfo grows with the cores
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def choose_precision(on_gpu: bool, gpu_bf16: bool, flags: Set[str]) -> tuple[str, str]:
    """(Lightning precision, why) for a run on a GPU (that supports bf16 or not) or on a CPU with `flags`."""
    if on_gpu:
        return ("bf16-mixed", "the GPU supports bf16") if gpu_bf16 else ("32-true", "the GPU has no bf16")
    fast = sorted(set(FAST_BF16_CPU_FLAGS) & flags)
    if fast:
        return "bf16-mixed", f"the CPU has {' and '.join(fast)}"
    return "32-true", f"the CPU has neither {' nor '.join(FAST_BF16_CPU_FLAGS)}"


def resolve_precision(precision: str | int | None, accelerator: str) -> str | int | None:
    """`precision` as Lightning takes it: 'auto' becomes the choice for this machine, logged."""
    if str(precision) != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    gpu_bf16 = on_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    chosen, why = choose_precision(on_gpu, gpu_bf16, cpu_flags())
    rank_zero_info(f"trainer.precision=auto -> {chosen} ({why})")
    return chosen
