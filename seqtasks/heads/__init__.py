"""Heads (registry `heads`): what turns encoder states into predictions."""

from seqtasks.heads.lm import LanguageModelHead

__all__ = ["LanguageModelHead"]
