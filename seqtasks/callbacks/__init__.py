"""Training callbacks of seqtasks."""

from seqtasks.callbacks.samples import SampleEvolution

__all__ = ["SampleEvolution"]
