"""Tests of the seqtasks-sorting plugin; skipped when the plugin is not installed.

The generated data and the metrics are checked against Python's own sorted(); one tiny training run
(a few seconds) must beat the best guess that ignores the input, and the user's commands
(`python -m seqtasks.predict` and `python -m seqtasks.evaluate`, as subprocesses with
plugins=[seqtasks_sorting]) must sort new lines and agree with each other.

Run from the repository root with `python -m pytest plugins/seqtasks_sorting`: seqtasks' Hydra
search-path plugin, which finds this plugin's conf/, is only discovered from there in an editable install.
"""

import inspect
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch

pytest.importorskip("seqtasks_sorting")

from omegaconf import OmegaConf  # noqa: E402
from seqtasks_sorting import SortingData, SortingTask  # noqa: E402

from seqtasks.configuration.compose import compose_config  # noqa: E402
from seqtasks.configuration.registry import constructor_parameters  # noqa: E402
from seqtasks.errors import ConfigError, DataError  # noqa: E402
from seqtasks.run import run  # noqa: E402
from seqtasks.runtime.build import check_config  # noqa: E402
from seqtasks.tasks.base import PredictOptions  # noqa: E402
from seqtasks.tokenizers.word import WordTokenizer  # noqa: E402

# A run of a few seconds: short sequences, a small BiLSTM, one validation at the end.
TINY = [
    "task=sorting",
    "plugins=[seqtasks_sorting]",
    "trainer.precision=32-true",  # no figure hinges on whether this CPU has fast bf16
    "data.max_length=5",
    "data.train_size=4000",
    "data.val_size=200",
    "data.test_size=0",  # the test set is a file of the test's own, scored by seqtasks.evaluate
    "data.max_tokens=256",
    "encoder.hidden_size=32",
    "trainer.max_steps=200",
    "trainer.val_check_interval=200",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
]


def reference(line: str) -> str:
    """The expected output, written independently of the plugin's sorted_line."""
    return " ".join(str(n) for n in sorted(int(t) for t in line.split()))


def input_blind_scores(lines: list[str]) -> tuple[float, float]:
    """Token accuracy and exact-match share of the best guess that sees only the line's length and
    the position: the most frequent sorted token (sequence) there, counted on these very lines, so
    an upper bound for any predictor that ignores what the tokens are."""
    tokens, sequences = defaultdict(Counter), defaultdict(Counter)
    for line in lines:
        target = reference(line).split()
        sequences[len(target)][tuple(target)] += 1
        for position, token in enumerate(target):
            tokens[len(target), position][token] += 1
    right_tokens = sum(c.most_common(1)[0][1] for c in tokens.values())
    right_sequences = sum(c.most_common(1)[0][1] for c in sequences.values())
    return right_tokens / sum(map(len, (line.split() for line in lines))), right_sequences / len(lines)


# --- data ------------------------------------------------------------------------------------------
def test_generated_splits_are_seeded_and_their_targets_sorted():
    data = SortingData(vocab_size=7, min_length=2, max_length=4, train_size=300, val_size=50, test_size=0, seed=3)
    train = data.read("train")
    assert len(train) == 300 and len(data.read("val")) == 50 and not data.has_test
    numbers = [[int(t) for t in line.split()] for line in train]
    assert {len(n) for n in numbers} == {2, 3, 4} and {x for n in numbers for x in n} == set(range(7))
    again = SortingData(vocab_size=7, min_length=2, max_length=4, train_size=300, seed=3)
    assert again.read("train") == train  # the seed alone fixes the examples
    assert SortingData(vocab_size=7, min_length=2, max_length=4, train_size=300, seed=4).read("train") != train
    assert data.read("val") != train[:50]  # each split has its own draw

    tokenizers = data.build_tokenizers({"name": "word"})
    tokenizer = tokenizers["tokens"]
    assert sorted(tokenizer.vocab.tokens[4:], key=int) == [str(n) for n in range(7)]  # after the 4 specials
    encoded = data.encoded("train")
    batch = data.collate()([(i, encoded[i]) for i in range(5)])
    assert batch.tokens.shape == batch.targets.shape == (5, int(batch.lengths.max()))
    for row in range(5):
        n = int(batch.lengths[row])
        assert tokenizer.decode(batch.tokens[row, :n].tolist()) == train[row]
        assert tokenizer.decode(batch.targets[row, :n].tolist()) == reference(train[row])
        assert batch.mask[row].tolist() == [True] * n + [False] * (batch.tokens.shape[1] - n)


def test_a_test_file_replaces_the_generated_test_split(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("3 1 2\n\n10 9\n")
    data = SortingData(test=str(path), test_size=0)
    assert data.has_test and data.read("test") == ["3 1 2", "10 9"]  # blank lines skipped
    path.write_text("3 1 2\n4 x 5\n")
    with pytest.raises(DataError, match=r"test.txt:2: expected whitespace-separated integers"):
        SortingData(test=str(path)).read("test")


def test_only_a_word_tokenizer_fits():
    data = SortingData(train_size=20, val_size=5)
    with pytest.raises(ConfigError, match="set tokenizer=word"):
        data.build_tokenizers({"name": "char"})
    with pytest.raises(ConfigError, match="min_length=9 is above data.max_length=8"):
        SortingData(min_length=9)


# --- the task ----------------------------------------------------------------------------------------
def untrained_task() -> SortingTask:
    torch.manual_seed(0)
    return SortingTask(
        encoder={"name": "lstm", "hidden_size": 4, "num_layers": 1, "bidirectional": True},
        head={"name": "softmax_tagger"},
        tokenizers={"tokens": WordTokenizer().fit(["0 1 2 3 4 5 6 7 8 9"]).state()},
        optimizer={"_target_": "torch.optim.Adam", "lr": 0.01},
    )


def test_scores_count_tokens_and_whole_sequences():
    records = [  # (gold, predicted, the sequence's share of the loss x its length)
        (torch.tensor([4, 5, 6]), torch.tensor([4, 5, 6]), 0.3),
        (torch.tensor([4, 7]), torch.tensor([4, 8]), 0.9),
        (torch.tensor([9]), torch.tensor([5]), 0.3),
    ]
    scores = untrained_task().score(records, "val")
    assert scores == pytest.approx({"acc": 4 / 6, "exact": 1 / 3, "loss": 1.5 / 6})


def test_predictions_keep_each_line_and_its_length(caplog):
    lines = ["3 1 2", "", "7 12 7 7", "5"]
    outputs = untrained_task().predict_lines(lines, PredictOptions(batch_size=2))
    assert [len(out.split()) for out in outputs] == [3, 0, 4, 1]  # one token per input token, whatever it is
    assert outputs[1] == ""
    assert "1 of 4 lines hold tokens training never saw" in caplog.text  # 12: read as <unk>


# --- configs ---------------------------------------------------------------------------------------
def test_configs_compose_and_every_key_is_a_constructor_argument_with_its_default():
    cfg = compose_config("config", ["task=sorting"])
    assert (cfg.task.name, cfg.data.name, cfg.tokenizer.name, cfg.head.name) == (
        "sorting",
        "sorting",
        "word",
        "softmax_tagger",
    )
    assert cfg.encoder.bidirectional and cfg.trainer.max_steps == 1000  # experiment/default_sorting.yaml
    assert check_config(cfg) is SortingTask  # every key a constructor argument, every value valid
    bare = compose_config("config", ["task=sorting", "experiment=none"])
    for node, cls in ((bare.task, SortingTask), (bare.data, SortingData)):
        parameters = constructor_parameters(cls)
        for key, value in OmegaConf.to_container(node).items():
            if key in ("name", "optimizer", "scheduler"):
                continue
            default = parameters[key].default
            assert default is inspect.Parameter.empty or value == default, f"{key}: {value!r} != {default!r}"


# --- training, then the user's commands -------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny run (in this process) -> its best checkpoint."""
    run_dir = tmp_path_factory.mktemp("sorting_run")
    # One thread: a model this small gains nothing from two, and on a busy machine their spinning
    # cost ten times the CPU time here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(compose_config("config", TINY), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir / "checkpoints" / "best.ckpt"


def start(module: str, *args: str) -> subprocess.Popen:
    """`python -m <module> <args> plugins=[seqtasks_sorting]`, as a user types it, started in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args, "plugins=[seqtasks_sorting]"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # two processes at once: one thread each (see `trained`)
    )


def finish(*processes: subprocess.Popen) -> list[str]:
    """Each process's standard output, once all of them have ended, each with exit code 0."""
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, f"{process.args}\nexit {process.returncode}\n{stderr[-3000:]}"
    return [stdout for stdout, _ in results]


@pytest.mark.slow
def test_predict_sorts_new_lines_and_evaluate_scores_them_well_above_an_input_blind_guess(trained, tmp_path):
    generator = random.Random(12345)  # not the plugin's numpy generator: sequences it never produced
    lines = [" ".join(str(generator.randrange(10)) for _ in range(generator.randint(1, 5))) for _ in range(300)]
    test_file, input_file = tmp_path / "test.txt", tmp_path / "input.txt"
    test_file.write_text("\n".join(lines) + "\n")
    few = ["3 1 2", "9 0 9 1", "5", "4 4 2 8 0"]
    input_file.write_text("\n".join([*few, "", *lines]) + "\n")  # an empty line keeps its place

    # Both commands at once: most of their time is importing torch and Lightning.
    predicting = start("seqtasks.predict", f"ckpt={trained}", f"input={input_file}")
    evaluating = start("seqtasks.evaluate", f"ckpt={trained}", f"test={test_file}")
    predicted, evaluated = finish(predicting, evaluating)
    outputs, metrics = predicted.splitlines(), json.loads(evaluated)

    assert outputs[: len(few) + 1] == [reference(line) for line in few] + [""]
    sorted_by_model = outputs[len(few) + 1 :]
    assert len(sorted_by_model) == len(lines)
    # evaluate's metrics are those of predict's outputs, scored here against sorted().
    exact = sum(out == reference(line) for out, line in zip(sorted_by_model, lines, strict=True)) / len(lines)
    tokens = [
        (a == b)
        for out, line in zip(sorted_by_model, lines, strict=True)
        for a, b in zip(out.split(), reference(line).split(), strict=True)  # one output token per input token
    ]
    assert metrics["test/exact"] == pytest.approx(exact, abs=1e-6)
    assert metrics["test/acc"] == pytest.approx(sum(tokens) / len(tokens), abs=1e-6)

    blind_acc, blind_exact = input_blind_scores(lines)
    assert blind_acc < 0.5 and blind_exact < 0.25  # what a model that does not read its input gets
    assert metrics["test/acc"] > blind_acc + 0.4
    assert metrics["test/exact"] > max(0.9, blind_exact + 0.6)  # the tiny run sorts all 300 here
    assert metrics["test/loss"] < 0.2 * math.log(14)  # the uniform guess over 10 digits + 4 specials: ln 14
