"""seqtasks: recurrent sequence models composed by Hydra configs and trained with Lightning."""

__version__ = "0.1.0"
