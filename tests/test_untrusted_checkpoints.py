"""A checkpoint is data: nothing in it is ever instantiated or imported. Hydra's `_target_` (with
`_args_`, `_partial_`) planted at any depth of any config-like field of a real checkpoint (its
hyperparameters and its run config) makes no loader (predict, evaluate, inspect, export, resume,
init_from) build or import anything: each loads the model or fails with one seqtasks error.

The planted objects would leave traces if they ran: a file truncated (builtins.open), a
directory made (os.makedirs), a module imported from the working directory (whose import writes a
marker). Hydra's `_locate`, through which every `_target_` is resolved, is also watched."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hydra._internal.utils as hydra_utils
import pytest
from conftest import FP32, TINY_LM, TINY_TEXT, train
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqtasks import evaluate, inspect, predict
from seqtasks.configuration.compose import compose_config
from seqtasks.configuration.registry import DATASETS
from seqtasks.errors import SeqtasksError
from seqtasks.run import accept_run
from seqtasks.runtime.build import build_task, container, resumed_task
from seqtasks.runtime.checkpoint import AtomicCheckpointIO, load_checkpoint
from seqtasks.runtime.model_dir import export

# Examples per loader: 30 in the suite, SEQTASKS_HOSTILE_EXAMPLES=1000 for the full run (docs/development.md).
EXAMPLES = int(os.environ.get("SEQTASKS_HOSTILE_EXAMPLES", 30))
PROBE = "seqtasks_planted_probe"  # a module in the working directory that an import would run


@pytest.fixture(scope="module")
def trap(tmp_path_factory) -> dict[str, Path]:
    """The files a planted object would touch, and the module it would import (on sys.path)."""
    root = tmp_path_factory.mktemp("trap")
    victim = root / "victim.txt"
    victim.write_text("intact")
    (root / f"{PROBE}.py").write_text(f"open({str(root / 'imported')!r}, 'w').close()\ndef boom(*a, **k): pass\n")
    sys.path.insert(0, str(root))
    yield {"victim": victim, "made": root / "made", "imported": root / "imported"}
    sys.path.remove(str(root))


def plants(trap: dict[str, Path]) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {"_target_": "builtins.open", "_args_": [str(trap["victim"]), "w"]},
            {"_target_": "os.makedirs", "_args_": [str(trap["made"])]},
            {"_target_": f"{PROBE}.boom"},
            {"_target_": f"{PROBE}.boom", "_partial_": True},
            {"_target_": "builtins.exec", "_args_": [f"open({str(trap['victim'])!r}, 'w')"]},
        ]
    )


def nodes(tree: Any, path: tuple = ()) -> list[tuple]:
    """The paths of every dict and list in tree, and of every value inside them."""
    found = [path]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += nodes(value, (*path, key)) if isinstance(value, dict | list) else [(*path, key)]
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += nodes(value, (*path, index)) if isinstance(value, dict | list) else [(*path, index)]
    return found


def planted(checkpoint: dict[str, Any], data: st.DataObject, plant: dict[str, Any]) -> dict[str, Any]:
    """A copy of checkpoint with plant at a drawn depth of a drawn config-like field: the value
    there replaced by it, or, for a mapping, its keys merged into that mapping (an optimizer's own
    `_target_` replaced, say)."""
    checkpoint = copy.deepcopy(checkpoint)
    field = data.draw(st.sampled_from([("hyper_parameters",), ("seqtasks", "config")]), label="field")
    root = checkpoint
    for key in field[:-1]:
        root = root[key]
    path = data.draw(st.sampled_from(nodes(root[field[-1]], field[-1:])), label="path")
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent[path[-1]], dict) and data.draw(st.booleans(), label="merge"):
        parent[path[-1]].update(plant)
    else:
        parent[path[-1]] = plant
    return checkpoint


@pytest.fixture(scope="module")
def lm_overrides(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(TINY_TEXT)
    return [*TINY_LM, f"data.root={root}", "samples.every_n_steps=0", "logger=[]", FP32]


@pytest.fixture(scope="module")
def lm_run(lm_overrides, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("lm")
    train(*lm_overrides, run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def names_run(tiny_classifier) -> Path:
    """A classifier: evaluate needs a task whose data has a test split."""
    return tiny_classifier / "run"


@pytest.fixture(scope="module")
def lm_data(lm_overrides):
    data = DATASETS.build(container(compose_config("config", lm_overrides).data), "data")
    data.read_all()
    return data


@pytest.fixture
def watched(trap, monkeypatch) -> list[str]:
    """Every target Hydra is asked to resolve (it resolves each `_target_` through `_locate`)."""
    located: list[str] = []
    original = hydra_utils._locate

    def locate(path: str) -> Any:
        located.append(path)
        return original(path)

    monkeypatch.setattr(hydra_utils, "_locate", locate)
    return located


def assert_nothing_ran(trap: dict[str, Path], located: list[str]) -> None:
    assert trap["victim"].read_text() == "intact"
    assert not trap["made"].exists()
    assert not trap["imported"].exists() and PROBE not in sys.modules
    assert not [target for target in located if target.startswith(("builtins.", "os.", PROBE))], located


def write(checkpoint: dict[str, Any], path: Path) -> Path:
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)  # as seqtasks writes every checkpoint
    return path


def load_or_refuse(load) -> None:
    """The loader either works or fails with one seqtasks error (never another exception)."""
    try:
        load()
    except SeqtasksError:
        pass


def hostile(test):
    """Run test over EXAMPLES planted checkpoints (the same ones on every run)."""
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )(test)


def loader_test(loader, source: str = "lm_run"):
    """A property test: loader(checkpoint path, tmp dir, the run) -> a function that loads the
    checkpoint at that path, run on planted copies of a real last.ckpt (of the source run) written there."""

    @hostile
    @given(data=st.data())
    def property_test(request, lm_overrides, lm_data, trap, watched, tmp_path, data):
        checkpoint = load_checkpoint(request.getfixturevalue(source) / "checkpoints" / "last.ckpt")
        path = tmp_path / "checkpoints" / "last.ckpt"
        load = loaders.setdefault(loader, loader(path, tmp_path, SimpleNamespace(overrides=lm_overrides, data=lm_data)))
        write(planted(checkpoint, data, data.draw(plants(trap), label="plant")), path)
        load_or_refuse(load)
        assert_nothing_ran(trap, watched)

    loaders: dict = {}  # one per test: its config is composed once
    return property_test


def predicting(path: Path, tmp_path: Path, run):
    cfg = compose_config("predict", [f"ckpt={path}", "prime=ab", "length=4"], complete=True)
    return lambda: predict.predict(cfg)


def inspecting(path: Path, tmp_path: Path, run):
    text = tmp_path / "held_out.txt"
    text.write_text(TINY_TEXT[:200])
    cfg = compose_config("inspect", [f"ckpt={path}", f"input={text}", f"output={tmp_path / 'page.html'}"], True)
    return lambda: inspect.inspect(cfg)


def evaluating(path: Path, tmp_path: Path, run):
    cfg = compose_config("evaluate", [f"ckpt={path}", f"output={tmp_path / 'metrics.json'}"], complete=True)
    return lambda: evaluate.evaluate(cfg)


def exporting(path: Path, tmp_path: Path, run):
    predict_exported = predicting(tmp_path / "exported", tmp_path, run)

    def load():
        export(load_checkpoint(path), tmp_path / "exported")
        predict_exported()  # the exported directory is a model too

    return load


def resuming(path: Path, tmp_path: Path, run):
    """What a resumed run does with the checkpoint before Lightning restores its weights and state
    (which reads tensors and counters only): accept the run, build its task, build its optimizer."""
    cfg = compose_config("config", [*run.overrides, "resume=auto"])

    def load():
        accepted = accept_run(cfg, tmp_path)
        resumed_task(accepted.cfg, run.data, accepted.checkpoint).configure_optimizers()

    return load


def initialising(path: Path, tmp_path: Path, run):
    cfg = compose_config("config", [*run.overrides, f"init_from.checkpoint={path}"])
    return lambda: build_task(cfg, run.data).configure_optimizers()


@pytest.mark.parametrize(
    "loader, source",
    [
        (predicting, "lm_run"),
        (inspecting, "lm_run"),
        (evaluating, "names_run"),
        (exporting, "lm_run"),
        (resuming, "lm_run"),
        (initialising, "lm_run"),
    ],
)
def test_every_loader_loads_the_checkpoint_as_saved(request, lm_overrides, lm_data, tmp_path, loader, source):
    """The property tests load real checkpoints: unplanted, each loader gets through without an error."""
    checkpoint = load_checkpoint(request.getfixturevalue(source) / "checkpoints" / "last.ckpt")
    path = write(checkpoint, tmp_path / "checkpoints" / "last.ckpt")
    loader(path, tmp_path, SimpleNamespace(overrides=lm_overrides, data=lm_data))()


test_predict_never_runs_a_planted_target = loader_test(predicting)
test_inspect_never_runs_a_planted_target = loader_test(inspecting)
test_evaluate_never_runs_a_planted_target = loader_test(evaluating, source="names_run")
test_export_never_runs_a_planted_target = loader_test(exporting)
test_resume_never_runs_a_planted_target = loader_test(resuming)
test_init_from_never_runs_a_planted_target = loader_test(initialising)


@pytest.mark.slow
@pytest.mark.parametrize(
    "field, plant_key, merge",
    [
        (("hyper_parameters", "optimizer"), "weight_decay", False),  # the value of an optimizer argument
        (("hyper_parameters",), "optimizer", True),  # the optimizer's own _target_ replaced
        (("hyper_parameters",), "scheduler", True),
        (("seqtasks", "config"), "trainer", True),  # settings a resume may change: the command line's count
        (("seqtasks", "config"), "logger", False),
    ],
)
def test_a_resumed_run_never_runs_a_target_its_checkpoint_holds(
    lm_overrides, trap, watched, tmp_path, field, plant_key, merge
):
    run_dir = tmp_path / "run"
    train(*lm_overrides, run_dir=run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(last)
    node = checkpoint
    for key in field:
        node = node[key]
    plant = {"_target_": "builtins.open", "_args_": [str(trap["victim"]), "w"]}
    if merge:
        node[plant_key].update(plant)
    else:
        node[plant_key] = plant
    write(checkpoint, last)
    load_or_refuse(lambda: train(*lm_overrides, "trainer.max_steps=8", "resume=auto", run_dir=run_dir))
    assert_nothing_ran(trap, watched)


def test_weights_that_do_not_fit_the_stored_model_fail_in_one_line(lm_run, tmp_path):
    """Found by the 1,000-example run: a planted tokenizer vocabulary makes a model of another size."""
    checkpoint = load_checkpoint(lm_run / "checkpoints" / "last.ckpt")
    checkpoint["hyper_parameters"]["tokenizers"]["text"]["vocab"] = ["<pad>", "<unk>"]
    path = write(checkpoint, tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(SeqtasksError, match="weights do not fit the model its hyperparameters describe"):
        predicting(path, tmp_path, None)()


def test_evaluate_needs_the_run_configs_dataset(names_run, tmp_path):
    """Found by the 1,000-example run: a run config without its data section."""
    checkpoint = load_checkpoint(names_run / "checkpoints" / "last.ckpt")
    checkpoint["seqtasks"]["config"]["data"] = {"_target_": "os.getcwd"}
    path = write(checkpoint, tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(SeqtasksError, match="carries no run config with a dataset"):
        evaluating(path, tmp_path, None)()
