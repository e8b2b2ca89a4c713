"""One rule picks the metric that selects checkpoints, for the run and for its report; the run's
is one its task logs at validation, checked before training."""

from pathlib import Path

import pytest
from conftest import train

from seqtasks.configuration.compose import config_dir
from seqtasks.configuration.registry import TASKS
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import container
from seqtasks.runtime.monitor import checked_monitor, resolve_monitor

TASK = ("val/bleu", "max")

# A language model that trains in seconds: the reproducer.
TINY = [
    "experiment=char_rnn_shakespeare",
    "encoder.hidden_size=32",
    "encoder.num_layers=1",
    "task.embedding_dim=16",
    "task.tbptt_steps=32",
    "data.batch_size=4",
    "trainer.max_time=null",
    "trainer.max_steps=20",
    "trainer.limit_val_batches=3",
    "trainer.num_sanity_val_steps=0",
    "samples.every_n_steps=0",
    "trainer.val_check_interval=10",
    "logger=[]",
]


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


def test_a_metric_the_task_never_logs_fails_in_one_line_before_training(tmp_path: Path):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as refused:
        train(*TINY, "checkpoint.monitor=val/lss", "checkpoint.mode=min", run_dir=run_dir)
    assert str(refused.value) == (
        "checkpoint.monitor=val/lss: task 'language_model' logs no such validation metric as configured; "
        "choose from val/loss, val/bpc, val/ppl (did you mean 'val/loss'?)"
    )
    assert not (run_dir / "config.yaml").exists()  # refused before the run started


def test_attribute_accuracy_of_a_captioner_that_does_not_score_it_fails_before_reading_data(tmp_path: Path):
    missing = tmp_path / "no_such_data"  # never read: the monitor is refused first
    data = [f"data.train={missing / 'train.tsv'}", f"data.val={missing / 'val.tsv'}", "data.test=null"]
    with pytest.raises(
        ConfigError,
        match=r"^checkpoint.monitor=val/attr_acc: task 'captioning' logs no such validation metric as configured",
    ):
        train(
            "task=captioning",
            "task.attributes=null",
            "checkpoint.monitor=val/attr_acc",
            "checkpoint.mode=max",
            *data,
            "trainer.max_steps=1",
            run_dir=tmp_path / "run",
        )


def test_one_metric_of_a_per_label_family_may_select_checkpoints(compose_config):
    task_config = container(compose_config(["experiment=sst2_bilstm"]).task)
    classifier = TASKS.get("classification")
    assert checked_monitor(classifier, task_config, "val/f1/positive", "max") == ("val/f1/positive", "max")
    labelled = "val/precision/<label>, val/recall/<label>, val/f1/<label>"
    with pytest.raises(ConfigError, match=f"choose from val/acc, val/macro_f1, val/loss, {labelled} "):
        checked_monitor(classifier, task_config, "val/f1", "max")  # the family's name is not one of its metrics


RECIPES = sorted(path.stem for path in (Path(config_dir()) / "experiment").glob("*.yaml"))
CHOICES = [f"task={name}" for name in TASKS.names()] + [f"experiment={name}" for name in RECIPES]


@pytest.mark.parametrize("choice", CHOICES)
def test_every_task_and_recipe_selects_checkpoints_by_a_metric_it_declares_and_logs(compose_config, choice):
    cfg = compose_config([choice])
    task_class, task_config = TASKS.get(cfg.task.name), container(cfg.task)
    if task_class.__module__.startswith("seqtasks."):  # a plugin's task may leave them undeclared (then unchecked)
        assert task_class.validation_metrics(task_config) is not None, f"task '{cfg.task.name}' declares no metrics"
    checked_monitor(task_class, task_config, cfg.checkpoint.monitor, cfg.checkpoint.mode)
