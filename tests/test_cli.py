"""The commands users type: train (as a subprocess, where Hydra's own command line is what is
tested: --cfg/--help/--multirun, loggers, DDP on two CPU processes, mistakes in the command line),
predict and evaluate (in this process, through their main(argv)), and the errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_LM, TINY_TEXT, command, seqtasks

from seqtasks.runtime.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A data root laid out like ../shared/data, holding a tiny 'tinyshakespeare'."""
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root) -> Path:
    """One tiny run of experiment=char_rnn_shakespeare, logging to csv, TensorBoard and wandb."""
    run_dir = tmp_path_factory.mktemp("run")
    seqtasks(
        "experiment=char_rnn_shakespeare",
        *TINY_LM,
        f"data.root={data_root}",
        "logger=[csv,tensorboard,wandb]",
        f"hydra.run.dir={run_dir}",
    )
    return run_dir


def test_run_directory_holds_everything(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert {"val/loss", "val/bpc", "val/ppl"} <= set(metrics)
    assert metrics["val/loss"] < 4.5  # a few steps already beat the uniform guess over the vocabulary
    assert (trained_run / "config.yaml").read_text().count("hidden_size: 16") == 1
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = load_checkpoint(trained_run / "checkpoints" / name)
        assert checkpoint["seqtasks"]["task"] == "language_model"
        assert checkpoint["hyper_parameters"]["tokenizers"]["text"]["vocab"][4:6] == ["\n", " "]
    assert (trained_run / "csv" / "version_0" / "metrics.csv").is_file()
    assert "python -m seqtasks experiment=char_rnn_shakespeare" in (trained_run / "report.md").read_text()
    assert (trained_run / "report" / "loss.png").is_file()
    assert list((trained_run / "tensorboard").rglob("events.out.tfevents*"))
    assert list((trained_run / "wandb").glob("offline-run-*"))
    samples = [json.loads(line) for line in (trained_run / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [3, 3, 3, 6, 6, 6]
    assert [s["temperature"] for s in samples[:3]] == [0.5, 0.8, 1.0]


def test_a_library_caller_loads_a_checkpoint_without_loading_plugins_first(trained_run):
    # A fresh interpreter, as a notebook would be: no CLI has filled the registries.
    ckpt = str(trained_run / "checkpoints" / "best.ckpt")
    code = f"from seqtasks.runtime.build import load_task; print(type(load_task({ckpt!r})).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "LanguageModelTask"


def test_predict_writes_seeded_samples(trained_run, tmp_path):
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    out = tmp_path / "sample.txt"
    args = [f"ckpt={ckpt}", "prime=First", "length=40", "decoding=sampling", "decoding.temperature=0.8", "seed=3"]
    result = command("seqtasks.predict", *args, f"output={out}")
    assert str(out) in result.stderr
    text = out.read_text()
    assert text.startswith("First") and len(text) == len("First") + 40 + 1
    assert command("seqtasks.predict", *args).stdout == text  # same seed, same text, to stdout
    greedy = command("seqtasks.predict", f"ckpt={ckpt}", "prime=First", "length=40", "decoding=greedy")
    top1 = command(
        "seqtasks.predict", f"ckpt={ckpt}", "prime=First", "length=40", "decoding=sampling", "decoding.top_k=1"
    )
    assert greedy.stdout == top1.stdout
    default = command("seqtasks.predict", f"ckpt={ckpt}", "prime=First", "length=40", "seed=3")
    assert (
        default.stdout
        == command("seqtasks.predict", f"ckpt={ckpt}", "prime=First", "length=40", "seed=3", "decoding=sampling").stdout
    )  # the language model's own: sampling
    # Continuations per prime are num_samples: an n_best it would not read is refused, not ignored.
    two = command("seqtasks.predict", f"ckpt={ckpt}", "prime=First", "decoding=beam", "decoding.n_best=2", check=False)
    assert two.returncode == 2 and "decoding.n_best=2: a language model writes num_samples" in two.stderr


def test_predict_with_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    result = command("seqtasks.predict", f"ckpt={bad}", check=False)
    assert result.returncode == 2 and f"{bad}: not a readable checkpoint" in result.stderr


def test_cfg_job_and_help():
    job = seqtasks("--cfg", "job", "encoder=gru", "encoder.hidden_size=33").stdout
    assert "name: gru" in job and "hidden_size: 33" in job
    help_text = seqtasks("--help").stdout
    for group in ("task", "data", "encoder", "head", "decoding", "trainer", "logger", "experiment"):
        assert f"{group}: " in help_text


@pytest.mark.slow
def test_multirun_sweeps(tmp_path, data_root):
    seqtasks(
        "--multirun",
        "encoder=lstm,gru",
        *TINY_LM,
        "samples.every_n_steps=0",
        f"data.root={data_root}",
        f"hydra.sweep.dir={tmp_path}",
        "logger=csv",
    )
    for job in ("0", "1"):
        assert "val/loss" in json.loads((tmp_path / job / "metrics.json").read_text())
    assert "name: gru" in (tmp_path / "1" / "config.yaml").read_text()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path, data_root):
    result = seqtasks(
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        *TINY_LM,
        "samples.every_n_steps=0",
        f"data.root={data_root}",
        f"hydra.run.dir={tmp_path}",
    )
    assert "GLOBAL_RANK: 1" in result.stdout + result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val/loss"] < 4.5
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 6


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (["encoder=lstmm"], ["error: unknown encoder option 'lstmm'; choose from: gru, ", "(did you mean 'lstm'?)"]),
        (["encoder.hiden_size=3"], ["error: no config key 'encoder.hiden_size' (did you mean 'encoder.hidden_size'?)"]),
        (["--multirun", "encoder=lstm,grru"], ["error: unknown encoder option 'grru'", "(did you mean 'gru'?)"]),
        (["data=text_file"], ["config key 'data.path' must be set"]),
        (["encoder.num_layers=two"], ["encoder.num_layers='two': expected an integer >= 1"]),
        (["data.batch_size=0"], ["data.batch_size=0: expected an integer >= 1"]),
    ],
)
def test_a_mistake_in_the_command_line_is_one_line_and_exit_code_2(tmp_path, data_root, overrides, messages):
    data = [] if "data=text_file" in overrides else [f"data.root={data_root}"]
    result = seqtasks(*TINY_LM, *data, *overrides, f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode == 2
    assert all(message in result.stderr for message in messages), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_a_group_the_task_does_not_use_fails_before_training(tmp_path):
    result = seqtasks("task=classification", "decoding=beam", f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode == 2
    assert "task 'classification' does not use the decoding group; drop decoding=beam" in result.stderr
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("module", "arguments", "message"),
    [
        ("seqtasks.predict", [], "error: ckpt must be set, e.g. ckpt=..."),
        (
            "seqtasks.predict",
            ["ckpt=x.ckpt", "decoding=beem"],
            "error: unknown decoding option 'beem'; choose from: beam, greedy, sampling (did you mean 'beam'?)",
        ),
        ("seqtasks.predict", ["ckpt=x.ckpt", "inptu=a.txt"], "error: no config key 'inptu' (did you mean 'input'?)"),
        ("seqtasks.evaluate", [], "error: ckpt must be set, e.g. ckpt=..."),
        ("seqtasks.evaluate", ["ckpt=x.ckpt", "tset=a.tsv"], "error: no config key 'tset' (did you mean 'test'?)"),
        ("seqtasks.predict", ["ckpt=x.ckpt", "num_samples=0"], "error: num_samples=0: expected an integer >= 1"),
        ("seqtasks.predict", ["ckpt=x.ckpt", "length=-1"], "error: length=-1: expected an integer >= 1"),
        (
            "seqtasks.predict",
            ["ckpt=x.ckpt", "decoding=sampling", "decoding.beam_size=0"],
            "error: no config key 'decoding.beam_size': decoding 'sampling' has no beam_size; "
            "its keys: name, temperature, top_k, top_p, n_best",
        ),
        (
            "seqtasks.predict",
            ["ckpt=x.ckpt", "decoding.beam_size=3"],
            "error: no config key 'decoding.beam_size': no decoding is chosen; "
            "choose one: decoding=beam|greedy|sampling",
        ),
    ],
)
def test_predict_and_evaluate_mistakes_are_one_line(module, arguments, message):
    result = command(module, *arguments, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [message]


def test_a_trainer_option_lightning_rejects_is_one_line(tmp_path, data_root):
    result = seqtasks(
        *TINY_LM, f"data.root={data_root}", "trainer.max_steps=-5", f"hydra.run.dir={tmp_path}", check=False
    )
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if "max_steps" in line]
    assert len(error) == 1 and "ERROR" in error[0], result.stderr
    assert "`max_steps` must be a non-negative integer or -1 (infinite steps). You passed in -5." in error[0]


def test_evaluate_says_a_language_model_has_no_test_split(trained_run, tmp_path):
    ckpt = f"ckpt={trained_run / 'checkpoints' / 'best.ckpt'}"
    text = tmp_path / "heldout.txt"
    text.write_text("First Citizen:\n")
    expected = (
        "evaluate scores models on their data's test split, and dataset 'tinyshakespeare' (task 'language_model') "
        "has none and takes no test=...; the run's validation metrics are in its metrics.json"
    )
    for arguments in ([], [f"test={text}"]):
        result = command("seqtasks.evaluate", ckpt, *arguments, check=False)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [f"error: {trained_run / 'checkpoints' / 'best.ckpt'}: {expected}"]


def test_unknown_decoding_strategy_lists_choices(trained_run):
    result = command(
        "seqtasks.predict",
        f"ckpt={trained_run / 'checkpoints' / 'best.ckpt'}",
        "decoding=greedy",
        "decoding.name=beem",
        check=False,
    )
    assert result.returncode == 2
    assert "unknown decoding strategy 'beem' (decoding.name); choose from: beam, greedy, sampling" in result.stderr


def test_missing_and_bad_data_fail_clearly(tmp_path):
    missing = seqtasks(
        *TINY_LM, f"data.root={tmp_path}", "data.download=false", f"hydra.run.dir={tmp_path}/run", check=False
    )
    assert missing.returncode == 2
    assert f"{tmp_path}/tinyshakespeare/input.txt: dataset file not found" in missing.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"First line\nsecond \xc3\x28 line\n")
    invalid = seqtasks(*TINY_LM, "data=text_file", f"data.path={bad}", f"hydra.run.dir={tmp_path}/run2", check=False)
    assert invalid.returncode == 2
    assert f"{bad}:2: invalid UTF-8 at byte offset 18" in invalid.stderr
    assert not (tmp_path / "run2" / "checkpoints").exists()


@pytest.mark.slow
def test_multirun_with_ddp_keeps_each_job_in_its_own_directory(tmp_path, data_root):
    seqtasks(
        "--multirun",
        "encoder=lstm,gru",
        *TINY_LM,
        "samples.every_n_steps=0",
        f"data.root={data_root}",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "logger=[]",
        f"hydra.sweep.dir={tmp_path}",
    )
    for job, cell in (("0", "lstm"), ("1", "gru")):
        assert f"name: {cell}" in (tmp_path / job / "config.yaml").read_text()
        assert "val/loss" in json.loads((tmp_path / job / "metrics.json").read_text())
        assert load_checkpoint(tmp_path / job / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["0", "1", "multirun.yaml"]
