"""The pipeline around training: a run that stops before its first validation, the value sweepers
optimise (an Optuna search on tiny data), and runs that the task presets make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY_LM, TINY_TEXT, command, seqtasks, train

from seqtasks.errors import ConfigError, DataError, TrainingError
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.tasks.language_model import LanguageModelTask


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Tiny tinyshakespeare and names datasets, laid out like ../shared/data."""
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    names = root / "names" / "by_language"
    names.mkdir(parents=True)
    (names / "Russian.txt").write_text("".join(f"Ivanov{i}\n" for i in range(30)))
    (names / "Spanish.txt").write_text("".join(f"Garcia{i}\n" for i in range(30)))
    return root


SMALL = [
    "encoder.hidden_size=8",
    "encoder.num_layers=1",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "logger=[]",
]


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_a_run_that_stops_before_its_first_validation_validates_once_and_keeps_its_checkpoint(
    data_root, tmp_path, task
):
    # The presets stop early on val/acc (classification): a run of 2 steps never reaches a validation.
    metrics = train(
        f"task={task}",
        f"data.root={data_root}",
        *SMALL,
        "trainer.max_steps=2",
        "data.max_tokens=20",
        "task.sample_metrics.per_category=2" if task == "generation" else "task.embedding_dim=8",
        run_dir=tmp_path,
    )
    metric = "val/acc" if task == "classification" else "val/loss"
    assert metric in metrics and "test/loss" in metrics
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "best.ckpt")
    assert checkpoint["global_step"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_checkpoint_options_out_of_range_are_refused_before_training(data_root, tmp_path):
    # best.ckpt is one name: Lightning's top 2 would overwrite it with every check in its top 2.
    with pytest.raises(ConfigError, match=r"checkpoint.save_top_k=2: a run keeps its best checkpoint \(1: "):
        train(*TINY_LM, f"data.root={data_root}", "checkpoint.save_top_k=2", run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"checkpoint.every_n_steps=-5: expected an integer >= 1 or null"):
        train(*TINY_LM, f"data.root={data_root}", "checkpoint.every_n_steps=-5", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_best_ckpt_keeps_the_model_and_last_ckpt_the_run(data_root, tmp_path):
    # A language model: its checkpoints also carry the hidden state that training carries across batches.
    train(*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "ema.decay=0.9", "logger=[]", run_dir=tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.ckpt")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert {"optimizer_states", "lr_schedulers", "loops", "callbacks", "current_model_state"} <= set(last)
    assert "carry" in last["seqtasks"]
    model = {"pytorch-lightning_version", "hparams_name", "hyper_parameters", "state_dict", "seqtasks"}
    assert set(best) == model | {"epoch", "global_step"}
    assert set(best["seqtasks"]) == {"task", "config"}
    assert best["global_step"] == last["global_step"]  # validated at the end only: best is the last step
    # The weights it keeps are the average, which last.ckpt holds as its state_dict too.
    assert best["state_dict"].keys() == last["state_dict"].keys()
    assert all(best["state_dict"][name].equal(weight) for name, weight in last["state_dict"].items())
    with pytest.raises(ConfigError, match=r"holds a model but no training state"):
        train(*TINY_LM, f"data.root={data_root}", f"resume={tmp_path / 'checkpoints' / 'best.ckpt'}", run_dir=tmp_path)


@pytest.mark.slow
def test_a_runs_output_carries_none_of_lightnings_notices(data_root, tmp_path):
    # Lightning logs a line at every checkpoint written without weights_only, advertises its hosted
    # services and warns that the throughput monitor has no FLOPs per batch: noise in every log.
    result = seqtasks(
        "task=classification",
        f"data.root={data_root}",
        *SMALL,
        "trainer.max_epochs=2",
        "data.max_tokens=20",
        "task.embedding_dim=8",
        f"hydra.run.dir={tmp_path}",
    )
    output = result.stdout + result.stderr
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "weights_only" not in output
    assert "flops_per_batch" not in output
    assert "Tip" not in output and "LeafSpec" not in output


@pytest.mark.slow
def test_an_optuna_sweep_optimises_the_validation_metric_that_selects_checkpoints(data_root, tmp_path):
    seqtasks(
        "--multirun",
        "sweep=char_rnn_optuna",
        "hydra.sweeper.n_trials=2",
        *TINY_LM,
        "samples.every_n_steps=0",
        f"data.root={data_root}",
        "logger=[]",
        f"hydra.sweep.dir={tmp_path}",
    )
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    jobs = [json.loads((tmp_path / job / "metrics.json").read_text()) for job in ("0", "1")]
    # The value each trial returned is its val/loss (never a test metric): the best is the lowest.
    assert results["best_value"] == pytest.approx(min(job["val/loss"] for job in jobs))
    assert {"task.optimizer.lr", "encoder.dropout"} <= set(results["best_params"])  # (hidden_size is fixed here)


def test_checkpoint_monitor_replaces_the_metric_that_selects_checkpoints(data_root, tmp_path):
    names = [f"data.root={data_root}", *SMALL, "trainer.max_epochs=2", "task.embedding_dim=8"]
    with pytest.raises(ConfigError, match=r"checkpoint.monitor=val/loss needs checkpoint.mode=max or"):
        train("experiment=names_classify", *names, "checkpoint.monitor=val/loss", run_dir=tmp_path / "no_mode")
    run_dir = tmp_path / "by_loss"
    train("experiment=names_classify", *names, "checkpoint.monitor=val/loss", "checkpoint.mode=min", run_dir=run_dir)
    states = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["callbacks"]
    (selector,) = [state for key, state in states.items() if key.startswith("ModelCheckpoint")]
    assert selector["monitor"] == "val/loss"  # names_classify's own is val/acc
    assert "checkpoints are selected by `val/loss` (min)" in (run_dir / "report.md").read_text()


def test_too_little_data_for_one_batch_fails_naming_the_split(data_root, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("a few characters\n" * 20)  # 340 characters: not one batch of 64 rows x 128 steps
    with pytest.raises(
        DataError,
        match=rf"{small}: the train split has \d+ tokens, too few for one batch: 64 rows x "
        r"128 steps \+ 1 = 8193 needed",
    ):
        train("data=text_file", f"data.path={small}", "logger=[]", run_dir=tmp_path / "lm")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("ein Hund\t\n\ta dog\n")  # every pair has an empty side
    with pytest.raises(DataError, match=rf"{pairs}: the train split has no usable examples"):
        train(
            "task=translation",
            "data=parallel",
            f"data.train={pairs}",
            f"data.val={pairs}",
            "tokenizer=char",
            "logger=[]",
            run_dir=tmp_path / "translation",
        )


def test_non_finite_final_metrics_fail_the_run_and_are_written_as_such(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(LanguageModelTask, "score", lambda self, records, stage: {"loss": float("nan"), "bpc": 1.0})
    with pytest.raises(TrainingError, match=r"non-finite metrics \(val/loss=nan; written to"):
        train(*TINY_LM, f"data.root={data_root}", "samples.every_n_steps=0", "logger=[]", run_dir=tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["val/loss"] == "nan"  # never dropped


def test_predict_refuses_to_overwrite_its_input_and_writes_nothing_for_no_input(data_root, tmp_path):
    run_dir = tmp_path / "run"
    train(
        "experiment=names_classify",
        f"data.root={data_root}",
        *SMALL,
        "trainer.max_epochs=1",
        "task.embedding_dim=8",
        "early_stopping.patience=null",
        run_dir=run_dir,
    )
    ckpt = f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}"
    names = tmp_path / "names.txt"
    names.write_text("Ivanov3\n")
    refused = command("seqtasks.predict", ckpt, f"input={names}", f"output={names}", check=False)
    assert refused.returncode == 2 and "is the input file" in refused.stderr
    assert names.read_text() == "Ivanov3\n"
    assert command("seqtasks.predict", ckpt, "input=-", stdin="").stdout == ""  # no input, no output
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert command("seqtasks.predict", ckpt, f"input={empty}").stdout == ""
