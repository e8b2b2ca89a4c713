"""`python -m seqtasks.average` (seqtasks/runtime/averaging.py): the elementwise mean of checkpoints of
one model, written as a model that predict and evaluate take and resume refuses; a run keeps the
checkpoints to average with checkpoint.keep_every_n_steps. Checkpoints of different models, a
damaged input and an output over an input fail in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import command, train

from seqtasks.callbacks.kept import kept_checkpoints
from seqtasks.errors import ConfigError
from seqtasks.runtime.averaging import average_checkpoints
from seqtasks.runtime.checkpoint import load_checkpoint, write_checkpoint

NAMES = "Ivanov3\nGarcia7\nIvanov12\n"
NAN = torch.tensor([float("nan")]).numpy().tobytes()


def overrides(data_root: Path) -> list[str]:
    return [
        "experiment=names_classify",
        f"data.root={data_root}",
        "encoder.hidden_size=8",
        "encoder.num_layers=1",
        "task.embedding_dim=8",
        "trainer.max_steps=3",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "early_stopping.patience=null",
        "logger=[]",
        "checkpoint.keep_every_n_steps=1",
    ]


@pytest.fixture(scope="module")
def kept_run(tiny_classifier, tmp_path_factory) -> Path:
    """A classifier on tiny_classifier's names, trained for 3 steps keeping a checkpoint at each."""
    run = tmp_path_factory.mktemp("kept") / "run"
    train(*overrides(tiny_classifier / "data"), run_dir=run)
    return run


def step(run: Path, number: int) -> Path:
    return run / "checkpoints" / f"step-{number}.ckpt"


def refused(*arguments: str, expected: str) -> str:
    """The command exits 2 with one line of error that starts with `expected` -> that line."""
    result = command("seqtasks.average", *arguments, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"error: {expected}"), result.stderr
    return result.stderr


def test_a_run_keeps_a_checkpoint_every_n_steps(kept_run):
    kept = kept_checkpoints(kept_run / "checkpoints")
    assert [path.name for path in kept] == ["step-1.ckpt", "step-2.ckpt", "step-3.ckpt"]
    assert [load_checkpoint(path)["global_step"] for path in kept] == [1, 2, 3]


def test_the_average_of_two_checkpoints_is_their_elementwise_mean(kept_run, tmp_path):
    first, second, output = step(kept_run, 1), step(kept_run, 3), tmp_path / "mean.ckpt"
    command("seqtasks.average", f"ckpt=[{first},{second}]", f"output={output}")
    # The files as torch reads them, not through the code under test.
    a, b, mean = (torch.load(path, map_location="cpu", weights_only=True) for path in (first, second, output))
    assert mean["state_dict"].keys() == a["state_dict"].keys()
    assert any(not torch.equal(a["state_dict"][name], b["state_dict"][name]) for name in a["state_dict"])
    for name, tensor in mean["state_dict"].items():
        torch.testing.assert_close(tensor, (a["state_dict"][name] + b["state_dict"][name]) / 2, rtol=1e-6, atol=0)
    assert mean["hyper_parameters"] == b["hyper_parameters"]
    assert mean["seqtasks"]["config"] == b["seqtasks"]["config"]
    assert [source["global_step"] for source in mean["seqtasks"]["averaged_from"]] == [1, 3]
    # A model, not a point of a run: no optimizer, schedule, loops, callbacks or step.
    assert not {"optimizer_states", "lr_schedulers", "loops", "callbacks", "log_rows", "global_step"} & set(mean)
    assert "carry" not in mean["seqtasks"]
    load_checkpoint(output)  # its fresh digest holds


def test_predict_evaluate_and_export_take_the_average_of_a_runs_last_checkpoints_resume_refuses_it(
    kept_run, tiny_classifier, tmp_path
):
    output = tmp_path / "mean.ckpt"
    command("seqtasks.average", f"ckpt={kept_run}", "last=2", f"output={output}")
    sources = load_checkpoint(output)["seqtasks"]["averaged_from"]
    assert [Path(source["checkpoint"]).name for source in sources] == ["step-2.ckpt", "step-3.ckpt"]
    lines = command("seqtasks.predict", f"ckpt={output}", "input=-", stdin=NAMES).stdout.splitlines()
    assert [line.split("\t")[0] in ("Russian", "Spanish") for line in lines] == [True] * 3
    command("seqtasks.evaluate", f"ckpt={output}", f"output={tmp_path / 'metrics.json'}")
    assert "test/acc" in (tmp_path / "metrics.json").read_text()
    command("seqtasks.export", f"ckpt={output}", f"output={tmp_path / 'model'}")
    with pytest.raises(ConfigError, match="no training state") as caught:
        train(*overrides(tiny_classifier / "data"), f"resume={output}", run_dir=tmp_path / "resumed")
    assert f"init_from.checkpoint={output}" in str(caught.value)


def edit_task(checkpoint):
    checkpoint["seqtasks"]["task"] = "tagging"


def edit_hidden_size(checkpoint):
    checkpoint["hyper_parameters"]["encoder"]["hidden_size"] = 16


def edit_vocabulary(checkpoint):
    checkpoint["hyper_parameters"]["tokenizers"]["labels"]["vocab"].reverse()


def edit_shape(checkpoint):
    checkpoint["state_dict"]["head.project.bias"] = torch.zeros(3)


def edit_names(checkpoint):
    del checkpoint["state_dict"]["head.project.bias"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (edit_task, "holds a 'tagging' model, @1 a 'classification' one"),
        (edit_hidden_size, "hyper_parameters.encoder.hidden_size is 16, 8 in @1"),
        (edit_vocabulary, "its labels tokenizer differs from @1's"),
        (edit_shape, "weight 'head.project.bias' is (3,) torch.float32, (2,) torch.float32 in @1"),
        (edit_names, "has no weight 'head.project.bias', which @1 has"),
    ],
)
def test_checkpoints_of_different_models_are_refused_naming_the_first_that_differs(kept_run, tmp_path, edit, expected):
    other = tmp_path / "other.ckpt"
    checkpoint = load_checkpoint(step(kept_run, 3))
    edit(checkpoint)
    write_checkpoint(checkpoint, other)  # a sound file (a fresh digest) of another model
    line = refused(
        f"ckpt=[{step(kept_run, 1)},{step(kept_run, 2)},{other}]",
        f"output={tmp_path / 'mean.ckpt'}",
        expected=f"{other}: not the same model as the first checkpoint: ",
    )
    assert expected.replace("@1", str(step(kept_run, 1))) in line
    assert not (tmp_path / "mean.ckpt").exists()


def with_buffer(source: Path, target: Path, name: str, values: int | list[int]) -> Path:
    checkpoint = load_checkpoint(source)
    checkpoint["state_dict"][name] = torch.tensor(values)
    write_checkpoint(checkpoint, target)
    return target


def test_integer_tensors_must_be_equal_but_a_step_counter_takes_the_last_value(kept_run, tmp_path):
    ids = [with_buffer(step(kept_run, n), tmp_path / f"{n}.ckpt", "head.ids", [1, n]) for n in (1, 2)]
    with pytest.raises(ConfigError, match=r"weight 'head.ids' \(torch.int64\) differs from .*must be equal"):
        average_checkpoints(ids)
    counted = [with_buffer(step(kept_run, n), tmp_path / f"{n}.ckpt", "norm.num_batches_tracked", n) for n in (1, 2)]
    assert average_checkpoints(counted)["state_dict"]["norm.num_batches_tracked"] == 2


def test_tied_weights_are_each_the_mean_once(kept_run, tmp_path):
    # Two names for one float64 tensor (one storage, as torch.load gives tied weights back).
    paths, originals = [], []
    for n in (1, 2):
        checkpoint = load_checkpoint(step(kept_run, n))
        tied = checkpoint["state_dict"]["head.project.weight"].double()
        checkpoint["state_dict"]["head.project.weight"] = checkpoint["state_dict"]["head.tied"] = tied
        write_checkpoint(checkpoint, tmp_path / f"{n}.ckpt")
        paths.append(tmp_path / f"{n}.ckpt")
        originals.append(tied)
    mean = average_checkpoints(paths)["state_dict"]
    expected = (originals[0] + originals[1]) / 2
    assert torch.equal(mean["head.project.weight"], expected) and torch.equal(mean["head.tied"], expected)


def test_a_corrupted_input_is_refused_naming_it(kept_run, tmp_path):
    bad = tmp_path / "bad.ckpt"
    shutil.copy(step(kept_run, 2), bad)
    weight = load_checkpoint(bad)["state_dict"]["head.project.weight"].numpy().tobytes()
    clean = bad.read_bytes()
    at = clean.find(weight)
    bad.write_bytes(clean[:at] + NAN + clean[at + len(NAN) :])
    refused(
        f"ckpt=[{step(kept_run, 1)},{bad}]",
        f"output={tmp_path / 'mean.ckpt'}",
        expected=f"{bad}: corrupt checkpoint: tensor checkpoint['state_dict']['head.project.weight']",
    )
    assert not (tmp_path / "mean.ckpt").exists()


def test_the_output_may_not_be_an_input(kept_run, tmp_path):
    first = tmp_path / "first.ckpt"
    shutil.copy(step(kept_run, 1), first)
    before = first.read_bytes()
    refused(
        f"ckpt=[{first},{step(kept_run, 2)}]",
        f"output={first}",
        expected=f"output={first} is the ckpt file (ckpt={first}); give output another path",
    )
    assert first.read_bytes() == before


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["ckpt=@run"], "ckpt=@run is a run directory: say how many of its kept checkpoints to average, last=N"),
        (["ckpt=@run", "last=4"], "last=4: @run/checkpoints keeps 3 checkpoints"),
        (["ckpt=@run", "last=1"], "last=1: expected a number of checkpoints to average, 2 or more"),
        (["ckpt=[@1,@2]", "last=2"], "last=2 takes a run directory"),
        (["ckpt=[@1]"], "ckpt=['@1']: expected two or more checkpoints"),
        (["ckpt=[@1,@1]"], "ckpt names @1 twice"),
    ],
)
def test_what_to_average_is_checked_before_anything_is_read(kept_run, tmp_path, arguments, expected):
    names = {"@run": str(kept_run), "@1": str(step(kept_run, 1)), "@2": str(step(kept_run, 2))}

    def filled(text: str) -> str:
        for name, path in names.items():
            text = text.replace(name, path)
        return text

    refused(*map(filled, arguments), f"output={tmp_path / 'mean.ckpt'}", expected=filled(expected))
