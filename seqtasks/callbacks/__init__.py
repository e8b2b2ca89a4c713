"""Training callbacks of seqtasks."""

from seqtasks.callbacks.attention import AttentionImages
from seqtasks.callbacks.averaging import AveragedWeights
from seqtasks.callbacks.checkpointing import LastCheckpoint
from seqtasks.callbacks.kept import KeptCheckpoints
from seqtasks.callbacks.samples import SampleEvolution
from seqtasks.callbacks.telemetry import Telemetry, TrainingThroughput

__all__ = [
    "AttentionImages",
    "AveragedWeights",
    "KeptCheckpoints",
    "LastCheckpoint",
    "SampleEvolution",
    "Telemetry",
    "TrainingThroughput",
]
