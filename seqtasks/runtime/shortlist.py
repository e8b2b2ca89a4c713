"""`shortlist=K` in predict, evaluate and serve: a translation model searches over a vocabulary
shortlist (seqtasks/decoding/shortlist.py) learned from its run's training pairs, read again
through the dataset the checkpoint's run config names (downloaded where it is missing)."""

from __future__ import annotations

import logging
import time

from seqtasks.configuration.registry import DATASETS
from seqtasks.configuration.validation import PositiveInt, check_value
from seqtasks.errors import ConfigError
from seqtasks.runtime.checkpoint import recorded_data_config
from seqtasks.tasks.translation import TranslationTask

log = logging.getLogger(__name__)


def learn_shortlist(task, per_source: int) -> None:
    """Restrict the task's search to a shortlist of per_source candidates per source token (and the
    500 most frequent target tokens) learned from the run's training data."""
    check_value("shortlist", per_source, PositiveInt)
    if not isinstance(task, TranslationTask):
        raise ConfigError(f"shortlist={per_source}: a shortlist is for translation, not '{task.registered_name}'")
    data = recorded_data_config(f"shortlist={per_source}", task.run_config)
    start = time.perf_counter()
    task.use_shortlist(DATASETS.build(data, "data").usable("train"), per_source)
    log.info("learned a shortlist of %d per source token in %.1f s", per_source, time.perf_counter() - start)
