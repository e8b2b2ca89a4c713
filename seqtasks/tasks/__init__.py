"""Tasks (registry `tasks`): LightningModules that build their parts from config."""

from seqtasks.tasks.base import SeqTask
from seqtasks.tasks.language_model import LanguageModelTask

__all__ = ["LanguageModelTask", "SeqTask"]
