"""seqtasks plugin: a whole new task, sequence sorting (`task=sorting`), and its dataset (`data=sorting`).

seqtasks imports this package through its `seqtasks.plugins` entry point (or `plugins=[seqtasks_sorting]`);
importing it registers the task and the dataset. Their config group options live in `conf/` inside
this package (task/sorting.yaml, data/sorting.yaml, experiment/default_sorting.yaml), which seqtasks'
Hydra search-path plugin finds from the same entry point.
"""

from seqtasks_sorting.data import SortingData, sorted_line
from seqtasks_sorting.task import SortingTask

__all__ = ["SortingData", "SortingTask", "sorted_line"]
