"""One rule picks the metric that selects checkpoints, for the run and for its report."""

import pytest

from seqtasks.errors import ConfigError
from seqtasks.monitor import resolve_monitor

TASK = ("val/bleu", "max")


def test_the_tasks_own_metric_unless_another_is_given():
    assert resolve_monitor(None, None, TASK) == TASK
    assert resolve_monitor("val/bleu", None, TASK) == TASK
    assert resolve_monitor("val/attr_acc", "max", TASK) == ("val/attr_acc", "max")
    assert resolve_monitor("val/loss", "min", None) == ("val/loss", "min")  # a report of a plugin task
    assert resolve_monitor(None, None, None) is None


def test_another_metric_needs_its_direction():
    with pytest.raises(ConfigError, match=r"checkpoint.monitor=val/loss needs checkpoint.mode=max or"):
        resolve_monitor("val/loss", None, TASK)


@pytest.mark.parametrize("monitor", [None, "val/bleu", "val/loss"])
def test_a_misspelt_mode_is_refused_beside_any_monitor(monitor):
    with pytest.raises(ConfigError, match=r"checkpoint.mode=maximum: choose checkpoint.mode=max or"):
        resolve_monitor(monitor, "maximum", TASK)
