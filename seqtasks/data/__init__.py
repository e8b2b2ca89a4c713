"""Datasets (registry `datasets`): readers, file location and batching."""

from seqtasks.data.captions import CaptionData
from seqtasks.data.classification import NamesData, SST2Data
from seqtasks.data.tagging import TaggingData
from seqtasks.data.text_stream import TextStreamData, TinyShakespeare
from seqtasks.data.translation import Multi30k, ParallelData

__all__ = [
    "CaptionData",
    "Multi30k",
    "NamesData",
    "ParallelData",
    "SST2Data",
    "TaggingData",
    "TextStreamData",
    "TinyShakespeare",
]
