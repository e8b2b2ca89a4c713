"""Every option of every config group composes, and the component it describes builds."""


import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from seqtasks.config import config_dir
from seqtasks.registry import DATASETS, DECODING, ENCODERS, HEADS, TASKS, TOKENIZERS
from seqtasks.run import container
from seqtasks.tokenizers import LabelVocabulary, WordTokenizer

CONF = config_dir()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_conf_dir_has_the_required_groups():
    for group in ("task", "data", "encoder", "head", "decoding", "trainer", "logger", "experiment"):
        assert options(group), group


@pytest.mark.parametrize("option", options("encoder"))
def test_encoder_options_build(compose_config, option):
    cfg = compose_config([f"encoder={option}"])
    encoder = ENCODERS.build(container(cfg.encoder), input_size=4)
    assert encoder(torch.randn(2, 3, 4))[0].shape[-1] == encoder.output_size


@pytest.mark.parametrize("option", options("head"))
def test_head_options_build(compose_config, option):
    cfg = compose_config([f"head={option}"])
    if cfg.head.name == "classifier":  # one label per sequence
        head = HEADS.build(container(cfg.head), input_size=4, num_classes=7)
        assert head(torch.randn(2, 3, 4), torch.tensor([3, 1])).shape == (2, 7)
        return
    if cfg.head.name.endswith("_tagger"):  # one tag per position
        head = HEADS.build(container(cfg.head), input_size=4, num_tags=7)
        assert head(torch.randn(2, 3, 4)).shape == (2, 3, 7)
        return
    head = HEADS.build(container(cfg.head), input_size=4, vocab_size=7)
    if cfg.head.name == "decoder":  # reads target tokens, attending over encoder states
        state = head.initial_state(torch.randn(2, 5, 4), torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 4))
        logits = head(torch.randint(1, 7, (2, 3)), state)[0]
    else:
        logits = head(torch.randn(2, 3, 4))
    assert logits.shape == (2, 3, 7)


@pytest.mark.parametrize("option", options("decoding"))
def test_decoding_options_build(compose_config, option):
    cfg = compose_config([f"decoding={option}"])
    assert DECODING.build(container(cfg.decoding)).registered_name == cfg.decoding.name


@pytest.mark.parametrize("option", options("tokenizer"))
def test_tokenizer_options_build(compose_config, option):
    cfg = compose_config([f"tokenizer={option}"])
    tokenizer = TOKENIZERS.build(container(cfg.tokenizer)).fit(["abc cab"])
    assert tokenizer.decode(tokenizer.encode("cab")) == "cab"


@pytest.mark.parametrize("option", options("data"))
def test_data_options_build(compose_config, option, tiny_text_file, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("ein Haus\ta house\nzwei Hunde\ttwo dogs\n")
    cfg = compose_config([f"data={option}"])
    for key, value in {"path": tiny_text_file, "train": pairs, "val": pairs}.items():
        if key in cfg.data.keys() and OmegaConf.is_missing(cfg.data, key):  # mandatory: the user's files
            cfg.data[key] = str(value)
    data = DATASETS.build(container(cfg.data))
    assert data.registered_name == cfg.data.name


@pytest.mark.parametrize("option", options("task"))
def test_task_options_build(compose_config, option):
    cfg = compose_config([f"task={option}", "encoder.hidden_size=8", "tokenizer=char"])
    tokenizer = TOKENIZERS.build(container(cfg.tokenizer)).fit(["some text"]).state()
    tokenizers = {"translation": {"source": tokenizer, "target": tokenizer},
                  "classification": {"text": tokenizer, "labels": LabelVocabulary().fit(["a", "b"]).state()},
                  "generation": {"text": tokenizer, "labels": LabelVocabulary().fit(["a", "b"]).state()},
                  "tagging": {"words": WordTokenizer().fit(["some text"]).state(), "chars": tokenizer,
                              "tags": LabelVocabulary().fit(["X", "Y"]).state()},
                  }.get(option, {"text": tokenizer})
    task = TASKS.build(container(cfg.task), tokenizers=tokenizers,
                       encoder=container(cfg.encoder), head=container(cfg.head))
    assert isinstance(task.configure_optimizers(), torch.optim.Optimizer | dict)


@pytest.mark.parametrize("option", options("optimizer"))
def test_optimizer_options_build(compose_config, option):
    cfg = compose_config([f"optimizer={option}"])
    optimizer = instantiate(cfg.task.optimizer, params=[torch.nn.Parameter(torch.zeros(2))], _convert_="all")
    assert type(optimizer).__name__.lower() == option


@pytest.mark.parametrize("option", options("scheduler"))
def test_scheduler_options_build(compose_config, option):
    cfg = compose_config([f"scheduler={option}"])
    schedule = instantiate(cfg.task.scheduler)
    assert 0 < schedule(10_000, 1.0) <= 1.0 and schedule(10_000, 0.0) == 1.0


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options_build(compose_config, option, tmp_path):
    cfg = compose_config([f"trainer={option}", "trainer.accelerator=cpu"])
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(tmp_path))
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options_build(compose_config, option, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = compose_config([f"logger={option}"])
    for logger_cfg in cfg.logger.values():
        logger = instantiate(logger_cfg, save_dir=str(tmp_path))
        if option == "wandb":  # no API key here: it must go offline instead of prompting
            assert logger._offline


def test_several_loggers_at_once(compose_config):
    cfg = compose_config(["logger=[csv,tensorboard,wandb]"])
    assert sorted(cfg.logger) == ["csv", "tensorboard", "wandb"]


@pytest.mark.parametrize("option", options("experiment"))
def test_experiments_compose(compose_config, option):
    cfg = compose_config([f"experiment={option}"])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.task.name in TASKS


@pytest.mark.parametrize("name", ["predict", "evaluate"])
def test_command_configs_compose(compose_config, name):
    cfg = compose_config(["ckpt=x.ckpt", "decoding=beam", "decoding.beam_size=3"], name=name)
    assert cfg.decoding.beam_size == 3 and cfg.ckpt == "x.ckpt"
    assert compose_config(["ckpt=x.ckpt"], name=name).get("decoding") is None  # the model's own


def test_a_task_option_chooses_the_other_groups_and_the_command_line_wins(compose_config):
    cfg = compose_config(["task=translation"])
    assert (cfg.data.name, cfg.tokenizer.name, cfg.head.name, cfg.decoding.name) == \
        ("multi30k", "sentencepiece", "decoder", "beam")
    assert cfg.encoder.bidirectional and cfg.early_stopping.patience == 5
    OmegaConf.resolve(cfg)
    assert cfg.task.decoding.name == "beam"  # the test-time strategy is the decoding group
    cfg = compose_config(["task=translation", "encoder=lstm", "decoding=greedy", "encoder.hidden_size=64"])
    assert (cfg.encoder.name, cfg.encoder.hidden_size, cfg.decoding.name) == ("lstm", 64, "greedy")
    assert compose_config([]).early_stopping.patience is None  # the language model's defaults are untouched
