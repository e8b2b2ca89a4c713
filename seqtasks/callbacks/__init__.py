"""Training callbacks of seqtasks."""

from seqtasks.callbacks.attention import AttentionImages
from seqtasks.callbacks.samples import SampleEvolution

__all__ = ["AttentionImages", "SampleEvolution"]
