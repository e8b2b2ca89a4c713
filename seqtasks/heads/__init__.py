"""Heads (registry `heads`): what turns encoder states into predictions; attention (registry `attention`)."""

from seqtasks.heads.attention import AdditiveAttention, Attention, ConcatAttention, DotAttention, GeneralAttention
from seqtasks.heads.base import Head
from seqtasks.heads.classifier import SequenceClassifier
from seqtasks.heads.decoder import RecurrentDecoder
from seqtasks.heads.lm import LanguageModelHead
from seqtasks.heads.tagger import CRFTagger, SoftmaxTagger, TaggerHead

__all__ = [
    "AdditiveAttention",
    "Attention",
    "CRFTagger",
    "ConcatAttention",
    "DotAttention",
    "GeneralAttention",
    "Head",
    "LanguageModelHead",
    "RecurrentDecoder",
    "SequenceClassifier",
    "SoftmaxTagger",
    "TaggerHead",
]
