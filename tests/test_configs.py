"""Every option of every config group composes, the component it describes builds, and every
default has one home: a YAML value equals the constructor's default wherever both exist."""

import dataclasses
import inspect

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from seqtasks.configuration.compose import config_dir
from seqtasks.configuration.registry import (
    DATASETS,
    DECODING,
    ENCODERS,
    HEADS,
    IMAGE_ENCODERS,
    TASKS,
    TOKENIZERS,
    constructor_parameters,
)
from seqtasks.errors import ConfigError
from seqtasks.runtime.build import check_config, container, task_groups
from seqtasks.runtime.precision import choose_precision, resolve_precision
from seqtasks.runtime.run_options import check_run_options
from seqtasks.tasks.generation import SampleMetrics
from seqtasks.tokenizers import LabelVocabulary, WordTokenizer

CONF = config_dir()
REGISTRY_OF_GROUP = {
    "encoder": ENCODERS,
    "image_encoder": IMAGE_ENCODERS,
    "head": HEADS,
    "decoding": DECODING,
    "tokenizer": TOKENIZERS,
    "data": DATASETS,
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_conf_dir_has_the_required_groups():
    for group in ("task", "data", "encoder", "head", "decoding", "trainer", "logger", "experiment", "sweep"):
        assert options(group), group


# --- one home per default -----------------------------------------------------------------------
def yaml_values(node) -> dict:
    """A config node's values, resolved, without the mandatory ones left at ??? (the user's files)."""
    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if v != "???"}


def assert_defaults_equal(values: dict, cls: type, where: str) -> None:
    """Every key of a YAML mapping that the constructor also gives a default has the same value
    (the task's optimizer and scheduler are the homes of their own groups)."""
    parameters = constructor_parameters(cls)
    for key, value in values.items():
        if (
            key in ("name", "optimizer", "scheduler")
            or key not in parameters
            or parameters[key].default is inspect.Parameter.empty
        ):
            continue
        default = parameters[key].default
        if default is None and isinstance(value, dict):  # nested options with defaults of their own
            continue
        if isinstance(default, tuple):
            default = list(default)
        assert value == default, f"{where}.{key}: YAML says {value!r}, {cls.__name__} says {default!r}"


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in REGISTRY_OF_GROUP for o in options(g)])
def test_group_option_values_equal_the_constructor_defaults(compose_config, group, option):
    cfg = compose_config([f"{group}={option}", "experiment=none"])
    values = yaml_values(cfg[group])
    # (The decoder's nested rnn and attention are its own choices, with no constructor default.)
    assert_defaults_equal(values, REGISTRY_OF_GROUP[group].get(values["name"]), f"conf/{group}/{option}")


@pytest.mark.parametrize("option", options("task"))
def test_task_option_values_equal_the_constructor_defaults(compose_config, option):
    values = yaml_values(compose_config([f"task={option}", "experiment=none"]).task)
    task_class = TASKS.get(values["name"])
    assert_defaults_equal(values, task_class, f"conf/task/{option}")
    if "sample_metrics" in values:
        defaults = {f.name: f.default for f in dataclasses.fields(SampleMetrics)}
        assert values["sample_metrics"] == defaults


def test_trainer_config_lists_every_trainer_argument_with_its_default_or_a_documented_choice(compose_config):
    cfg = container(compose_config([]).trainer)
    arguments = {name for name in inspect.signature(L.Trainer.__init__).parameters if name != "self"}
    set_by_seqtasks = {"logger", "callbacks", "plugins", "default_root_dir"}
    assert set(cfg) - {"_target_"} == arguments - set_by_seqtasks


def test_any_trainer_argument_can_be_set_on_the_command_line(compose_config):
    cfg = compose_config(["trainer.accumulate_grad_batches=2", "trainer.detect_anomaly=true"])
    assert cfg.trainer.accumulate_grad_batches == 2 and cfg.trainer.detect_anomaly


# --- precision: auto -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("on_gpu", "gpu_bf16", "flags", "expected"),
    [
        (False, False, {"avx2", "fma"}, "32-true"),  # AMD Zen 3, Intel Skylake
        (False, False, {"avx512f", "avx512_bf16"}, "bf16-mixed"),  # AMD Zen 4, Intel Cooper Lake
        (False, False, {"avx512f", "amx_bf16", "amx_tile"}, "bf16-mixed"),  # Intel Sapphire Rapids
        (True, True, set(), "bf16-mixed"),  # A100, H100
        (True, False, {"amx_bf16"}, "32-true"),  # an older GPU: the GPU decides
    ],
)
def test_precision_auto_follows_the_hardware(on_gpu, gpu_bf16, flags, expected):
    chosen, why = choose_precision(on_gpu, gpu_bf16, flags)
    assert chosen == expected and why


def test_precision_other_than_auto_is_kept():
    assert resolve_precision("32-true", "cpu") == "32-true" and resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") in ("32-true", "bf16-mixed")


# --- components build ----------------------------------------------------------------------------
@pytest.mark.parametrize("option", options("encoder"))
def test_encoder_options_build(compose_config, option):
    cfg = compose_config([f"encoder={option}"])
    encoder = ENCODERS.build(container(cfg.encoder), "encoder", input_size=4)
    assert encoder(torch.randn(2, 3, 4))[0].shape == (2, 3, encoder.output_size)


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


def tokenizers_for(task: str, tokenizer: dict) -> dict:
    labels = LabelVocabulary().fit(["a", "b"]).state()
    return {
        "translation": {"source": tokenizer, "target": tokenizer},
        "classification": {"text": tokenizer, "labels": labels},
        "generation": {"text": tokenizer, "labels": labels},
        "tagging": {
            "words": WordTokenizer().fit(["some text"]).state(),
            "chars": tokenizer,
            "tags": LabelVocabulary().fit(["X", "Y"]).state(),
        },
    }.get(task, {"text": tokenizer})


@pytest.mark.parametrize("option", options("task"))
def test_task_options_build_and_train_a_step(compose_config, option):
    cfg = compose_config([f"task={option}", "tokenizer=char"])
    if cfg.get("encoder") is not None:  # captioning has an image encoder instead
        cfg.encoder.hidden_size = 8
    task_class = check_config(cfg)
    tokenizer = TOKENIZERS.build(container(cfg.tokenizer)).fit(["some text"]).state()
    task = TASKS.build(
        container(cfg.task), "task", tokenizers=tokenizers_for(option, tokenizer), **task_groups(cfg, task_class)
    )
    optimizers = task.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    parameter = next(task.parameters())
    before = parameter.detach().clone()
    parameter.sum().backward()
    optimizer.step()
    assert not torch.equal(parameter, before)  # the optimizer from the config moves the task's parameters


@pytest.mark.parametrize("option", [o for o in options("optimizer")])
def test_optimizer_options_build(compose_config, option):
    cfg = compose_config([f"optimizer={option}"])
    optimizer = instantiate(cfg.task.optimizer, params=[torch.nn.Parameter(torch.zeros(2))], _convert_="all")
    assert type(optimizer).__name__.lower() == option


@pytest.mark.parametrize("option", options("scheduler"))
def test_scheduler_options_build(compose_config, option):
    cfg = compose_config([f"scheduler={option}"])
    schedule = instantiate(cfg.task.scheduler)
    factors = [schedule(10_000, progress / 100) for progress in range(101)]  # after any warmup
    assert all(0 < factor <= 1.0 for factor in factors) and max(factors) == pytest.approx(1.0)


@pytest.mark.parametrize("option", [o for o in options("trainer") if o != "gpu"])
def test_trainer_options_build(compose_config, option, tmp_path):
    options_ = container(compose_config([f"trainer={option}", "trainer.accelerator=cpu"]).trainer)
    options_["precision"] = resolve_precision(options_["precision"], "cpu")
    trainer = instantiate(options_, logger=False, default_root_dir=str(tmp_path))
    assert trainer.max_epochs == options_["max_epochs"]


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options_build(compose_config, option, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = compose_config([f"logger={option}"])
    for logger_cfg in cfg.logger.values():
        logger = instantiate(logger_cfg, save_dir=str(tmp_path))
        logger.log_metrics({"a": 1.0}, step=0)
        logger.save()
        if option == "wandb":  # no API key here: it must go offline instead of prompting
            assert logger._offline
        else:
            assert any(path.is_file() for path in tmp_path.rglob("*")), f"{option} wrote nothing"


def test_several_loggers_at_once(compose_config):
    cfg = compose_config(["logger=[csv,tensorboard,wandb]"])
    assert sorted(cfg.logger) == ["csv", "tensorboard", "wandb"]


@pytest.mark.parametrize("option", options("experiment"))
def test_experiments_compose_and_validate(compose_config, option, tiny_text_file):
    # A task's default recipe (default_<task>) goes with its task; named experiments choose theirs.
    task = [f"task={option.removeprefix('default_')}"] if option.startswith("default_") else []
    cfg = compose_config([*task, f"experiment={option}"])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    if OmegaConf.is_missing(cfg.data, "train") if "train" in cfg.data.keys() else False:
        return  # data=parallel: the user's files
    assert check_config(cfg).registered_name == cfg.task.name
    check_run_options(container(cfg))
    assert cfg.trainer.precision == "auto"  # no experiment pins a precision one machine was fast at


@pytest.mark.parametrize("name", ["predict", "evaluate"])
def test_command_configs_compose(compose_config, name):
    cfg = compose_config(["ckpt=x.ckpt", "decoding=beam", "decoding.beam_size=3"], name=name)
    assert cfg.decoding.beam_size == 3 and cfg.ckpt == "x.ckpt"
    assert compose_config(["ckpt=x.ckpt"], name=name).get("decoding") is None  # the model's own


def test_a_task_option_chooses_its_groups_and_its_recipe_and_the_command_line_wins(compose_config):
    cfg = compose_config(["task=translation"])
    assert (cfg.data.name, cfg.tokenizer.name, cfg.head.name, cfg.decoding.name) == (
        "multi30k",
        "sentencepiece",
        "decoder",
        "beam",
    )
    assert cfg.encoder.bidirectional and cfg.early_stopping.patience == 5  # the Multi30k recipe
    assert cfg.trainer.max_time == "00:00:55:00"
    cfg = compose_config(["task=translation", "encoder=lstm", "decoding=greedy", "encoder.hidden_size=64"])
    assert (cfg.encoder.name, cfg.encoder.hidden_size, cfg.decoding.name) == ("lstm", 64, "greedy")
    bare = compose_config(["task=translation", "experiment=none"])
    assert not bare.encoder.bidirectional and bare.trainer.max_time is None  # the groups' own defaults
    assert compose_config([]).early_stopping.patience is None  # the language model's defaults are untouched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["task=classification", "decoding=beam"],
            "task 'classification' does not use the decoding group; drop decoding=beam",
        ),
        (
            ["task=tagging", "head=classifier"],
            "task 'tagging' cannot use head 'classifier'.*choose from: crf_tagger, softmax_tagger",
        ),
        (["encoder.num_layers=0"], r"encoder.num_layers=0: expected an integer >= 1"),
        (["data.batch_size=0"], r"data.batch_size=0: expected an integer >= 1"),
        (["task.optimizer.lr=-1"], r"task.optimizer: .*Invalid learning rate: -1"),
        (["task=classification", "task.word_dropout=1.5"], r"task.word_dropout=1.5: expected a number in \[0, 1\)"),
        (["head.dropout=-0.1"], r"head.dropout=-0.1: expected a number in \[0, 1\)"),
        # Infinity is no number a bound admits: a temperature of inf would sample uniformly.
        (["decoding=sampling", "decoding.temperature=inf"], r"decoding.temperature=inf: expected a number >= 0"),
        (["tokenizer.min_frequency=0"], r"tokenizer.min_frequency=0: expected an integer >= 1"),
    ],
)
def test_a_config_is_checked_whole_before_anything_is_read(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(overrides))


def test_a_task_that_decodes_needs_the_decoding_group(compose_config):
    cfg = compose_config(["task=translation"])
    with open_dict(cfg):
        cfg.decoding = None
    with pytest.raises(ConfigError, match="task 'translation' needs the decoding group: set decoding=..."):
        check_config(cfg)


def test_the_slurm_launcher_example_follows_the_trainer(compose_config):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm_ddp", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher._target_.endswith("SlurmLauncher")
