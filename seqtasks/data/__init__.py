"""Datasets (registry `datasets`): readers, file location and batching."""

from seqtasks.data.text_stream import TextStreamData, TinyShakespeare

__all__ = ["TextStreamData", "TinyShakespeare"]
