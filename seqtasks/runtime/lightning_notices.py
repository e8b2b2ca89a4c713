"""Lightning's notices that say nothing about a seqtasks run, kept out of its log.

- "Tip: ... try installing litlogger / litmodels": advertisements for Lightning's hosted services,
  logged by every Trainer;
- the throughput monitor's warning that the module defines no `flops_per_batch`: seqtasks logs
  samples and tokens per second; its batches differ in length, so it gives no FLOPs per batch;
- torch's deprecation of `isinstance(treespec, LeafSpec)`, raised inside Lightning's own code.

Everything else Lightning logs or warns stays, except around a Trainer built only to check its
options (`quiet_lightning`), whose device summary would repeat the real one's."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

WARNINGS = (
    "When using the `ThroughputMonitor`, you need to define a `flops_per_batch`",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip")


def silence_lightning_notices() -> None:
    """Filter the notices above from this process's log and warnings (idempotent)."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_a_tip not in logger.filters:
        logger.addFilter(_not_a_tip)
    for message in WARNINGS:
        warnings.filterwarnings("ignore", message=message)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines (devices available and used, tips) off inside the block."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
