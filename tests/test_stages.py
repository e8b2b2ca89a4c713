"""A run in two stages (pretrain.overrides, seqtasks/runtime/stages.py), as experiment=sst2_ulmfit
trains: a language model of the classifier's training text, then the classifier started from it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from conftest import FP32, seqtasks

from seqtasks.configuration.compose import compose_config
from seqtasks.data.text_stream import TextStreamData
from seqtasks.errors import ConfigError, DataError
from seqtasks.run import run
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.runtime.stages import finished, first_stage

GOOD = ["good", "great", "fine", "lovely", "warm"]
BAD = ["bad", "dull", "awful", "cold", "flat"]
FILLER = ["the", "film", "is", "a", "story", "and", "very", "quite"]


def sentences(count: int, seed: int) -> str:
    rng = random.Random(seed)
    rows = ["sentence\tlabel"]
    for _ in range(count):
        label = rng.randrange(2)
        words = rng.choices(FILLER, k=4) + rng.choices(GOOD if label else BAD, k=2)
        rng.shuffle(words)
        rows.append(f"{' '.join(words)}\t{label}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A data root holding a tiny SST-2 laid out like the real one (sst2/train.tsv, sst2/dev.tsv)."""
    root = tmp_path_factory.mktemp("data")
    (root / "sst2").mkdir()
    (root / "sst2" / "train.tsv").write_text(sentences(300, seed=1))
    (root / "sst2" / "dev.tsv").write_text(sentences(40, seed=2))
    return root


def stage_overrides(root: Path) -> str:
    """The recipe's first stage, shrunk: the language model reads sst2/train.tsv under root."""
    stage = [
        "experiment=sst2_lm",
        "seed=${seed}",
        f"data.root={root}",
        "tokenizer.vocab_size=40",
        "task.embedding_dim=8",
        "encoder.hidden_size=8",
        "task.tbptt_steps=8",
        "data.batch_size=4",
        "trainer.max_steps=4",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "logger=[]",
        FP32,
    ]
    return "pretrain.overrides=[" + ",".join(f"'{override}'" for override in stage) + "]"


def ulmfit(root: Path, *more: str) -> list[str]:
    return [
        "experiment=sst2_ulmfit",
        stage_overrides(root),
        f"data.root={root}",
        "task.embedding_dim=8",
        "encoder.hidden_size=8",
        "trainer.max_steps=3",
        "trainer.max_epochs=1",
        "trainer.max_time=null",
        "trainer.val_check_interval=1.0",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "ema.decay=null",
        "logger=[]",
        *more,
    ]


@pytest.fixture(scope="module")
def two_stage_run(data_root, tmp_path_factory) -> Path:
    """The recipe as a user runs it (`python -m seqtasks`: the first stage composed inside the app)."""
    run_dir = tmp_path_factory.mktemp("ulmfit")
    seqtasks(*ulmfit(data_root), FP32, f"hydra.run.dir={run_dir}")
    return run_dir


def test_the_classifier_starts_from_the_first_stage_language_model(two_stage_run):
    """Gradual unfreezing trains only the head in the first epoch: after it the classifier's
    embedding and LSTM are still exactly the language model's best weights, and its tokenizer is the
    language model's."""
    language_model = load_checkpoint(two_stage_run / "pretrain" / "checkpoints" / "best.ckpt")
    classifier = load_checkpoint(two_stage_run / "checkpoints" / "best.ckpt")
    started = {k: v for k, v in language_model["state_dict"].items() if k.split(".")[0] in ("embedding", "encoder")}
    assert started and any(k.startswith("encoder.") for k in started)
    for key, weights in started.items():
        assert torch.equal(classifier["state_dict"][key], weights), key
    tokenizers = classifier["hyper_parameters"]["tokenizers"], language_model["hyper_parameters"]["tokenizers"]
    assert tokenizers[0]["text"] == tokenizers[1]["text"]
    recorded = (two_stage_run / "config.yaml").read_text()
    assert f"checkpoint: {two_stage_run / 'pretrain' / 'checkpoints' / 'best.ckpt'}" in recorded
    assert (two_stage_run / "pretrain" / "metrics.json").is_file() and (two_stage_run / "metrics.json").is_file()


def test_the_language_model_reads_only_the_text_column(data_root):
    """Its text is the sentences, one a line, in the file's order: no labels, no header, no tabs."""
    data = TextStreamData(path="sst2/train.tsv", root=str(data_root), text_column="sentence", val_fraction=0.5)
    text = "".join(data.read("train").chunks()) + "".join(data.read("val").chunks())
    rows = (data_root / "sst2" / "train.tsv").read_text().splitlines()[1:]
    assert text == "".join(row.split("\t")[0] + "\n" for row in rows)


def test_a_finished_first_stage_is_used_again_and_a_changed_one_is_not(two_stage_run, data_root, tmp_path):
    """The second stage failed (here: its checkpoints removed by hand): the same command in the same
    directory trains the classifier again from the first stage as it is."""
    cfg = compose_config("config", [*ulmfit(data_root), FP32])
    stage = first_stage(cfg)
    assert finished(stage, two_stage_run)
    assert not finished(first_stage(compose_config("config", [*ulmfit(data_root), FP32, "seed=7"])), two_stage_run)
    copy = tmp_path / "run"
    (copy / "pretrain" / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.json", "checkpoints/best.ckpt"):
        (copy / "pretrain" / name).write_bytes((two_stage_run / "pretrain" / name).read_bytes())
    before = (copy / "pretrain" / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    run(cfg, copy)
    assert (copy / "pretrain" / "checkpoints" / "best.ckpt").stat().st_mtime_ns == before
    assert not (copy / "pretrain" / "checkpoints" / "last.ckpt").exists()  # never trained again
    assert (copy / "checkpoints" / "best.ckpt").is_file()


def test_a_mistake_in_the_first_stage_fails_before_anything_is_written(data_root, tmp_path):
    cfg = compose_config("config", [*ulmfit(data_root), FP32])
    cfg.pretrain.overrides.append("encoder.hiden_size=8")
    with pytest.raises(ConfigError, match="encoder.hidden_size"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (f"init_from.checkpoint={__file__}", "pretrain.overrides and init_from.checkpoint"),  # one that exists
        ("trainer.devices=2", "trains in one process"),
        ("trainer.devices=auto", "trains in one process"),  # every GPU of the machine, maybe
        ("trainer.strategy=ddp", "trains in one process"),
    ],
)
def test_what_a_first_stage_cannot_go_with_is_refused(data_root, tmp_path, override, message):
    cfg = compose_config("config", [*ulmfit(data_root), FP32, override])
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_text_column_must_be_in_the_header_and_every_row_complete(tmp_path):
    path = tmp_path / "labelled.tsv"
    path.write_text("sentence\tlabel\na fine film\t1\nno label here\n")
    with pytest.raises(DataError, match="header has no column 'text'; found columns 'sentence', 'label'"):
        TextStreamData(path=str(path), text_column="text").read("train")
    with pytest.raises(DataError, match=r"labelled.tsv:3: expected 2 tab-separated fields, found 1"):
        TextStreamData(path=str(path), text_column="sentence").read("train")
