"""Training callbacks of seqtasks."""

from seqtasks.callbacks.attention import AttentionImages
from seqtasks.callbacks.checkpointing import LastCheckpoint
from seqtasks.callbacks.samples import SampleEvolution
from seqtasks.callbacks.telemetry import Telemetry, TrainingThroughput

__all__ = ["AttentionImages", "LastCheckpoint", "SampleEvolution", "Telemetry", "TrainingThroughput"]
