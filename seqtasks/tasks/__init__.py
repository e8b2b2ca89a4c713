"""Tasks (registry `tasks`): LightningModules that build their parts from config."""

from seqtasks.tasks.base import SeqTask
from seqtasks.tasks.captioning import CaptioningTask
from seqtasks.tasks.classification import ClassificationTask
from seqtasks.tasks.generation import GenerationTask
from seqtasks.tasks.language_model import LanguageModelTask
from seqtasks.tasks.tagging import TaggingTask
from seqtasks.tasks.translation import TranslationTask

__all__ = [
    "CaptioningTask",
    "ClassificationTask",
    "GenerationTask",
    "LanguageModelTask",
    "SeqTask",
    "TaggingTask",
    "TranslationTask",
]
