"""Building a task from config (a new run) or from a checkpoint (predict, evaluate), and checking a
whole config before anything is read or trained.

Sizes and facts flow forward: the datamodule fits the tokenizers; the task class says what else it
needs from the data (`data_inputs`, e.g. generation's training names); the config groups that the
task's constructor takes (encoder, image_encoder, head, decoding) are handed over as plain dicts; and a generation
task's agreement classifier is loaded here, from its checkpoint, and handed in as a callable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from seqtasks.configuration.plugins import load_builtin_components
from seqtasks.configuration.registry import (
    DATASETS,
    DECODING,
    ENCODERS,
    HEADS,
    IMAGE_ENCODERS,
    TASKS,
    TOKENIZERS,
    check_arguments,
    constructor_parameters,
)
from seqtasks.configuration.validation import did_you_mean
from seqtasks.errors import ConfigError, SeqtasksError
from seqtasks.runtime.arithmetic import use_arithmetic
from seqtasks.runtime.checkpoint import load_checkpoint
from seqtasks.runtime.shortlist import learn_shortlist
from seqtasks.tasks.base import Capability
from seqtasks.tokenizers.base import Tokenizer

GROUPS = (
    "encoder",
    "image_encoder",
    "head",
    "decoding",
)  # config groups handed to the task's constructor when it takes them
BACKENDS = ("torch", "onnxruntime")  # what predict, evaluate and serve run a model's tensor math on
FLOWING = ("input_size", "vocab_size", "num_classes", "num_tags", "num_directions", "pad_id")  # sizes set by tasks


def container(config: Any) -> Any:
    """Plain, resolved dicts for constructors; a mandatory key left at ??? fails here, by name."""
    if not isinstance(config, DictConfig):
        return config
    try:
        return OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise ConfigError(f"config key '{error.full_key}' must be set, e.g. {error.full_key}=...") from None


def task_groups(cfg: DictConfig, task_class: type) -> dict[str, Any]:
    """The config groups the task's constructor takes. A group chosen for a task that does not use it
    (decoding=beam with a classifier) is an error, not silently ignored; a group it needs must be set."""
    accepted = constructor_parameters(task_class)
    groups = {}
    for group in GROUPS:
        value = cfg.get(group)
        if group in accepted:
            if value is None:
                raise ConfigError(f"task '{task_class.registered_name}' needs the {group} group: set {group}=...")
            groups[group] = container(value)
        elif value is not None:
            raise ConfigError(
                f"task '{task_class.registered_name}' does not use the {group} group; drop "
                f"{group}={value.get('name', '...')} (or choose {group}=null)"
            )
    return groups


def check_optimisation(task_config: dict[str, Any]) -> None:
    """Build the optimizer (on a dummy parameter) and the schedule once, so that a misspelt or
    out-of-range argument (lr=-1) fails before training, naming task.optimizer / task.scheduler."""
    try:
        instantiate(task_config["optimizer"], params=[torch.nn.Parameter(torch.zeros(1))], _convert_="all")
    except Exception as error:  # torch and Hydra raise TypeError, ValueError, InstantiationException
        raise ConfigError(f"task.optimizer: {one_line(error)}") from None
    if task_config.get("scheduler"):
        try:
            instantiate(task_config["scheduler"])(0, 0.0)
        except Exception as error:
            raise ConfigError(f"task.scheduler: {one_line(error)}") from None


def one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def check_config(cfg: DictConfig) -> type:
    """Validate every component config of a run before anything is read or built -> the task class.
    Plugins must be loaded first."""
    task_config = container(cfg.task)
    if not isinstance(task_config, dict) or "name" not in task_config:
        raise ConfigError(f"task config has no 'name'; choose from: {', '.join(TASKS.names())}")
    task_class = TASKS.get(task_config["name"], path="task")
    groups = task_groups(cfg, task_class)
    given = ("tokenizers", "plugins", *GROUPS)
    TASKS.check(task_config, "task", given=given)
    user = f"task '{task_class.registered_name}'"
    if "encoder" in groups:
        ENCODERS.check(groups["encoder"], "encoder", given=FLOWING)
    if "image_encoder" in groups:
        IMAGE_ENCODERS.check(groups["image_encoder"], "image_encoder", given=FLOWING)
    if "head" in groups:
        HEADS.check(groups["head"], "head", sort=task_class.head_sort, user=user, given=FLOWING)
    if "decoding" in groups:
        DECODING.check(groups["decoding"], "decoding")
    TOKENIZERS.check(container(cfg.tokenizer), "tokenizer")
    DATASETS.check(container(cfg.data), "data")
    check_optimisation(task_config)
    return task_class


def agreement_from(path: str | None):
    """The `Classify` callable of a trained classification checkpoint (texts -> labels), or None."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(
            f"task.agreement_classifier: {path}: checkpoint not found "
            "(train one with experiment=names_classify, or set it to null)"
        )
    classifier = restore_task(load_checkpoint(path))
    if not classifier.can(Capability.LABELS):
        raise ConfigError(
            f"task.agreement_classifier: {path} holds a '{classifier.registered_name}' task, not a classifier"
        )
    return classifier.predict_labels


def handed_in(task_class: type, task_config: dict[str, Any]) -> dict[str, Any]:
    """Callables the builder hands to the task (not saved with it): generation's agreement classifier."""
    if "agreement" in constructor_parameters(task_class):
        return {"agreement": agreement_from(task_config.get("agreement_classifier"))}
    return {}


def build_task(cfg: DictConfig, data, tokenizer_dir: Path | None = None):
    """A new task: tokenizers fitted on the training data (their files written to tokenizer_dir),
    the groups it takes, what it needs from the data, and callables handed in. With
    init_from.checkpoint, the checkpoint's tokenizers replace the fitted ones of the same sides and
    its weights (init_from.parts of them) are loaded."""
    init = cfg.get("init_from") or {}
    source = load_checkpoint(init["checkpoint"]) if init.get("checkpoint") else None
    task = task_from_config(cfg, data, tokenizers_of(source) if source is not None else None, tokenizer_dir)
    if source is not None:
        load_parts(task, source["state_dict"], container(init.get("parts")), init["checkpoint"])
    return task


def resumed_task(cfg: DictConfig, data, checkpoint: dict[str, Any]):
    """The task a resumed run continues, built like a new one from the run's own composed config
    (which `resume.check_resumable` compared with the checkpoint's) and with the checkpoint's
    tokenizers; fit() then restores its weights. The checkpoint's stored hyperparameters are never
    built from: they are data, and an optimizer's `_target_` in them must not be instantiated."""
    return task_from_config(cfg, data, tokenizers_of(checkpoint))


def tokenizers_of(checkpoint: dict[str, Any]) -> dict[str, Tokenizer]:
    """The checkpoint's fitted tokenizers, by side (`load_checkpoint` checked that they are a
    mapping; a malformed state is a ConfigError of `Tokenizer.from_state`)."""
    return {side: Tokenizer.from_state(state) for side, state in checkpoint["hyper_parameters"]["tokenizers"].items()}


def task_from_config(cfg: DictConfig, data, given: dict[str, Tokenizer] | None, tokenizer_dir: Path | None = None):
    """The task the composed config describes, with tokenizers fitted on the data (those `given`
    are used as they are)."""
    task_class = TASKS.get(cfg.task.name, path="task")
    tokenizers = data.build_tokenizers(container(cfg.tokenizer), given)
    if tokenizer_dir is not None:
        save_tokenizers(tokenizers, tokenizer_dir)
    task_config = container(cfg.task)
    return TASKS.build(
        task_config,
        "task",
        tokenizers={side: t.state() for side, t in tokenizers.items()},
        plugins=list(cfg.plugins),
        **task_groups(cfg, task_class),
        **task_class.data_inputs(data),
        **handed_in(task_class, task_config),
    )


def load_parts(task, weights: dict[str, Any], parts: list[str] | None, origin: str) -> None:
    """Copy a checkpoint's weights into a new task: every parameter of the named top-level modules
    (parts, e.g. [embedding, encoder]; None: all of them). A part either lacks, or a parameter whose
    shape differs, fails naming the parameter."""
    own = task.state_dict()
    modules = sorted({key.split(".")[0] for key in own})
    parts = modules if parts is None else list(parts)
    for part in parts:
        if part not in modules:
            raise ConfigError(
                f"init_from.parts: this {task.registered_name} model has no part '{part}'; its parts: "
                f"{', '.join(modules)}{did_you_mean(part, modules)}"
            )
    chosen = {key: value for key, value in weights.items() if key.split(".")[0] in parts}
    for key in (k for k in own if k.split(".")[0] in parts):
        if key not in chosen:
            raise ConfigError(
                f"init_from: {origin} has no parameter '{key}' for this model's part "
                f"'{key.split('.')[0]}' (it holds: {', '.join(sorted({k.split('.')[0] for k in weights}))})"
            )
        if chosen[key].shape != own[key].shape:
            raise ConfigError(
                f"init_from: parameter '{key}' is {tuple(chosen[key].shape)} in {origin} but "
                f"{tuple(own[key].shape)} in this model (the parts must be built alike: same sizes and "
                "tokenizer)"
            )
    unexpected = sorted(set(chosen) - set(own))
    if unexpected:
        raise ConfigError(f"init_from: {origin} has parameters this model lacks: {', '.join(unexpected[:5])}")
    task.load_state_dict(chosen, strict=False)
    rank_zero_info(f"init_from: {len(chosen)} tensors of {', '.join(parts)} from {origin}")


@rank_zero_only
def save_tokenizers(tokenizers: dict[str, Tokenizer], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for side, tokenizer in tokenizers.items():
        tokenizer.save(directory, side)


def restore_task(checkpoint: dict[str, Any], with_callables: bool = False):
    """The task of a checkpoint read by `load_checkpoint`, on CPU, in eval mode. Built-in components
    are loaded here; plugins it names must have been loaded (`plugins=[...]`); with_callables also
    hands in what the builder would (evaluate)."""
    load_builtin_components()  # library callers need not have run a CLI (which loads them) first
    name = checkpoint["seqtasks"]["task"]  # `load_checkpoint` checked the layout: a string, a mapping
    hyper_parameters = checkpoint["hyper_parameters"]
    plugins = hyper_parameters.get("plugins")
    hint = f" (it was trained with plugins: pass them, plugins=[{','.join(map(str, plugins))}])" if plugins else ""
    if name not in TASKS:
        raise SeqtasksError(f"the checkpoint's task {name!r} is not registered{hint}")
    task_class = TASKS.get(name)
    try:
        # The stored arguments are data: each is checked against the constructor's annotation, as
        # a config's would be, and nothing in them is instantiated (an optimizer's `_target_` is
        # only ever built by a run, from its own composed config).
        check_arguments(task_class, hyper_parameters, "hyper_parameters", given=task_class.not_saved)
        extra = handed_in(task_class, hyper_parameters) if with_callables else {}
        task = task_class(**hyper_parameters, **extra)
    except (ConfigError, KeyError, TypeError, ValueError) as error:  # a stored value of the wrong shape
        raise SeqtasksError(f"the checkpoint's model cannot be rebuilt: {error}{hint}") from None
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # missing, unexpected or misshapen weights
        first = str(error).strip().splitlines()
        raise SeqtasksError(
            f"the checkpoint's weights do not fit the model its hyperparameters describe: {' '.join(first[:2])}"
        ) from None
    task.run_config = checkpoint["seqtasks"].get("config")
    return task.eval()


@dataclass(frozen=True)
class Inference:
    """How predict, evaluate and serve run a trained model: their `device`, `backend`, `quantize`
    and `shortlist` keys."""

    device: str = "cpu"  # cpu | cuda
    backend: str = "torch"  # torch: the PyTorch modules | onnxruntime: an exported directory's ONNX graphs
    quantize: str | None = None  # None (fp32) | int8 | bf16: seqtasks/runtime/arithmetic.py
    shortlist: int | None = None  # translation: candidates per source token (seqtasks/runtime/shortlist.py)

    @classmethod
    def of(cls, cfg: DictConfig) -> Inference:
        check_device(cfg.device)
        return cls(cfg.device, cfg.backend, cfg.quantize, cfg.shortlist)


def check_device(device: Any) -> None:
    """device=cpu | cuda, and cuda only where PyTorch sees a GPU."""
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device={device}: choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device=cuda: this PyTorch ({torch.__version__}) sees no CUDA GPU; use device=cpu")


PYTORCH_FP32_CPU = Inference()


def load_task(path: str | Path, inference: Inference = PYTORCH_FP32_CPU):
    """The trained task (LightningModule) in a checkpoint file or exported directory, on CPU, in
    eval mode, ready to run as `inference` says (see for_inference)."""
    return for_inference(restore_task(load_checkpoint(path)), path, inference)


def for_inference(task, path: str | Path, inference: Inference):
    """The task as predict, evaluate and serve run it: its PyTorch modules (backend=torch) in the
    arithmetic `quantize` chooses, or the ONNX graphs of the exported directory `path`
    (backend=onnxruntime, on the CPU: seqtasks/onnx/backend.py)."""
    backend, device = inference.backend, inference.device
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend}: choose {' | '.join(BACKENDS)}")
    if inference.shortlist is not None and backend != "torch":
        raise ConfigError(
            f"shortlist={inference.shortlist} cuts the PyTorch output layer: not with backend={backend}; "
            "use backend=torch"
        )
    if backend == "torch":
        task = use_arithmetic(task, inference.quantize, device)
        if inference.shortlist is not None:
            learn_shortlist(task, inference.shortlist)
        return task
    if inference.quantize is not None:
        raise ConfigError(
            f"quantize={inference.quantize} changes the PyTorch modules, which backend=onnxruntime does not run: "
            "leave quantize null, or use backend=torch"
        )
    if device != "cpu":
        raise ConfigError(f"backend=onnxruntime runs on the CPU: set device=cpu (not device={device})")
    try:
        from seqtasks.onnx.backend import run_on_onnxruntime
    except ImportError as error:
        raise ConfigError(f"backend=onnxruntime needs the onnx extra: pip install 'seqtasks[onnx]' ({error})") from None
    return run_on_onnxruntime(task, Path(path))


def decoding_overrides(cfg: DictConfig, task) -> Any:
    """predict's and evaluate's `decoding=`, `guidance=` and `hidden_word_bonus=` for a trained task:
    guidance and the bonus are set on the task, the strategy returned (None: the run's own); a task
    that does not decode refuses one."""
    strategy = None
    if cfg.get("decoding"):
        if task.strategy is None:
            raise ConfigError(f"task '{task.registered_name}' does not decode; drop decoding=...")
        strategy = DECODING.build(OmegaConf.to_container(cfg.decoding, resolve=True), "decoding")
    if cfg.get("guidance") is not None:
        task.use_guidance(float(cfg.guidance))
    bonus = cfg.get("hidden_word_bonus")
    if bonus is not None:
        task.use_hidden_word_bonus(None if bonus is False else float(bonus))  # false: without it
    return strategy
