"""Tokenizers (registry `tokenizers`) and the vocabulary they share."""

from seqtasks.tokenizers.base import Tokenizer
from seqtasks.tokenizers.char import CharTokenizer
from seqtasks.tokenizers.labels import LabelVocabulary
from seqtasks.tokenizers.sentencepiece import SentencePieceTokenizer
from seqtasks.tokenizers.vocab import Vocab
from seqtasks.tokenizers.word import WordTokenizer

__all__ = ["CharTokenizer", "LabelVocabulary", "SentencePieceTokenizer", "Tokenizer", "Vocab", "WordTokenizer"]
