"""Freed memory kept for reuse: a large tensor allocated again after it was freed takes no new page
faults (the kernel's count of them is the reference)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

FAULTS_OF_REALLOCATING = """
import resource, sys, torch
torch.set_num_threads(1)  # no worker threads allocating beside the main one
from seqtasks.runtime.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(5):
    torch.ones(16 << 20).sum()  # 64 MB: the heap's first pages fault either way, until its layout settles
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 << 20).sum()  # allocated, written, freed
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_REALLOCATING, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_freed_tensor_is_reused_without_page_faults():
    default, kept = page_faults("default"), page_faults("keep")
    assert default > 20 * 16_000 * 0.9  # 64 MB of fresh 4 KB pages at every allocation
    assert kept < default / 4  # a few allocations still land on fresh pages while the heap's layout settles
