"""Heads (registry `heads`): what turns encoder states into predictions; attention (registry `attention`)."""

from seqtasks.heads.attention import AdditiveAttention, Attention, ConcatAttention, DotAttention, GeneralAttention
from seqtasks.heads.classifier import SequenceClassifier
from seqtasks.heads.decoder import RecurrentDecoder
from seqtasks.heads.lm import LanguageModelHead
from seqtasks.heads.tagger import CRFTagger, SoftmaxTagger

__all__ = ["AdditiveAttention", "Attention", "ConcatAttention", "DotAttention", "GeneralAttention",
           "CRFTagger", "LanguageModelHead", "RecurrentDecoder", "SequenceClassifier",
           "SoftmaxTagger"]
