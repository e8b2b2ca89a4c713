"""Tagging end to end on a tiny CoNLL-U treebank: a shrunken `experiment=ud_ewt_pos` run through
`seqtasks.run.run` learns a trivial tagging, reports its metrics, tags new sentences, and its
checkpoint reloads; plus the metrics' arithmetic and the task's options."""

from __future__ import annotations

import json
import random

import conllu as conllu_parser
import pytest
import torch
from conftest import command, seqtasks, train, validate_in_one_process

from seqtasks.configuration.registry import TASKS
from seqtasks.errors import ConfigError
from seqtasks.metrics import tagging_scores
from seqtasks.runtime.build import container, load_task
from seqtasks.tasks.tagging import TaggingTask
from seqtasks.tokenizers import CharTokenizer, LabelVocabulary
from seqtasks.tokenizers.word import WordTokenizer

# Each word has one tag; the tag is also written in the word's ending, so unseen words can be tagged.
LEXICON = {
    "DET": ["the", "a", "this"],
    "NOUN": ["dog", "cat", "bird", "fish"],
    "VERB": ["running", "eating", "singing"],
    "ADV": ["quickly", "slowly", "loudly"],
}
UNSEEN = {"jumping": "VERB", "sadly": "ADV"}

TINY = [
    "data.max_tokens=80",
    "encoder.hidden_size=24",
    "encoder.num_layers=1",
    "encoder.dropout=0.0",
    "task.word_embedding_dim=16",
    "task.char_embedding_dim=8",
    "task.char_hidden_size=12",
    "task.word_dropout=0.2",
    "task.dropout=0.0",
    "head.dropout=0.0",
    "task.optimizer.lr=0.02",
    "task.scheduler.warmup_steps=0",
    "trainer.max_epochs=12",
    "trainer.max_time=null",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "early_stopping.patience=null",
    "logger=[]",
]


def conllu(sentences: list[list[tuple[str, str]]]) -> str:
    return "".join(
        f"# sent_id = {n}\n"
        + "".join(f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_\n" for i, (w, t) in enumerate(s, start=1))
        + "\n"
        for n, s in enumerate(sentences)
    )


def random_sentences(count: int, seed: int, extra: dict[str, str] | None = None) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    pool = [(w, t) for t, words in LEXICON.items() for w in words] + list((extra or {}).items())
    return [[rng.choice(pool) for _ in range(rng.randint(1, 7))] for _ in range(count)]


@pytest.fixture(scope="module")
def tagging_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("treebank")
    files = {"train": random_sentences(60, 0), "val": random_sentences(10, 1), "test": random_sentences(10, 2, UNSEEN)}
    for split, sentences in files.items():
        (root / f"{split}.conllu").write_text(conllu(sentences), encoding="utf-8")
    run_dir = tmp_path_factory.mktemp("tagging_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files_ = [f"data.{split}={root / f'{split}.conllu'}" for split in files]
        metrics = train("experiment=ud_ewt_pos", *TINY, *files_, run_dir=run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir, metrics


def test_a_tiny_run_learns_and_reports_accuracy_overall_unseen_and_per_tag(tagging_run):
    run_dir, metrics = tagging_run
    assert metrics["val/acc"] == pytest.approx(1.0) and metrics["test/acc"] >= 0.9
    assert (run_dir / "report.md").is_file()
    # The unseen-word metrics, recomputed from the checkpoint's own tags of the test sentences.
    test = random_sentences(10, 2, UNSEEN)
    tagged = load_task(run_dir / "checkpoints" / "best.ckpt").tag([[word for word, _ in s] for s in test])
    words = [
        (word, gold, predicted)
        for s, tags in zip(test, tagged, strict=True)
        for (word, gold), predicted in zip(s, tags, strict=True)
    ]
    unseen = [gold == predicted for word, gold, predicted in words if word in UNSEEN]
    assert metrics["test/unseen_rate"] == pytest.approx(len(unseen) / len(words)) and 0 < len(unseen) < len(words)
    assert metrics["test/acc_unseen"] == pytest.approx(sum(unseen) / len(unseen))
    assert {"test/acc/DET", "test/acc/NOUN", "val/acc/VERB", "test/loss"} <= set(metrics)
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] == metrics["test/acc"]
    assert sorted(p.name for p in (run_dir / "tokenizers").iterdir()) == ["chars.json", "tags.json", "words.json"]


def test_the_checkpoint_reloads_and_tags_sentences(tagging_run):
    run_dir, _ = tagging_run
    task = load_task(run_dir / "checkpoints" / "best.ckpt")
    assert isinstance(task, TaggingTask) and not task.training
    sentences = [["the", "cat", "eating"], [], ["a", "fish", "slowly", "singing", "this", "bird"], ["dog"]]
    tagged = task.tag(sentences, batch_size=2)
    assert [len(t) for t in tagged] == [3, 0, 6, 1]
    assert tagged[0] == ["DET", "NOUN", "VERB"] and tagged[2][:3] == ["DET", "NOUN", "ADV"]
    reloaded = TaggingTask.load_from_checkpoint(run_dir / "checkpoints" / "best.ckpt", map_location="cpu")
    assert reloaded.tag(sentences) == tagged


MULTIWORD_TREEBANK = """# sent_id = mw
# text = the dog's eating
1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2-3\tdog's\t_\t_\t_\t_\t_\t_\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t4\tnsubj\t_\t_
3\t's\tbe\tAUX\t_\t_\t4\taux\t_\t_
3.1\tis\t_\t_\t_\t_\t_\t_\t_\t_
4\teating\teat\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No

# sent_id = plain
1\ta\ta\tDET\t_\t_\t2\tdet\t_\t_
2\tbird\tbird\tNOUN\t_\t_\t0\troot\t_\t_

"""


def test_predict_fills_the_upos_column_of_conllu_that_the_conllu_package_reads(tagging_run, tmp_path):
    run_dir, _ = tagging_run
    source, output = tmp_path / "in.conllu", tmp_path / "out.conllu"
    source.write_text(MULTIWORD_TREEBANK.replace("\tNOUN\t", "\t_\t").replace("\tDET\t", "\t_\t"))
    command("seqtasks.predict", f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", f"input={source}", f"output={output}")
    parsed = conllu_parser.parse(output.read_text(encoding="utf-8"))
    assert [s.metadata["sent_id"] for s in parsed] == ["mw", "plain"]
    words = [t for t in parsed[0] if isinstance(t["id"], int)]
    assert [(t["form"], t["upos"]) for t in words][:2] == [("the", "DET"), ("dog", "NOUN")]
    assert [t["upos"] for t in parsed[1]] == ["DET", "NOUN"]
    # Everything but the UPOS of the words is kept: the file differs from the input only there.
    written, original = output.read_text().split("\n"), source.read_text().split("\n")
    assert len(written) == len(original)
    for new, old in zip(written, original, strict=True):
        new_columns, old_columns = new.split("\t"), old.split("\t")
        assert new_columns[:3] + new_columns[4:] == old_columns[:3] + old_columns[4:]


def test_predict_tags_plain_lines_and_keeps_empty_lines(tagging_run):
    run_dir, _ = tagging_run
    result = command(
        "seqtasks.predict",
        f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}",
        "input=-",
        stdin="the cat eating\n\na bird\n",
    )
    assert result.stdout.split("\n") == ["DET NOUN VERB", "", "DET NOUN", ""]


def test_evaluate_scores_a_conllu_file_the_model_never_saw(tagging_run, tmp_path):
    run_dir, _ = tagging_run
    unseen = tmp_path / "new.conllu"
    unseen.write_text(MULTIWORD_TREEBANK.replace("\tAUX\t", "\tVERB\t"))
    result = command("seqtasks.evaluate", f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", f"test={unseen}")
    metrics = json.loads(result.stdout)
    assert {"test/acc", "test/acc_unseen", "test/acc/DET"} <= set(metrics)
    assert metrics["test/acc"] >= 0.6  # 5 words; "'s" (tagged VERB here) is unseen


def test_scores_overall_unseen_and_per_tag():
    gold = torch.tensor([0, 0, 1, 2, 2, 2])
    predicted = torch.tensor([0, 1, 1, 2, 0, 2])
    unseen = torch.tensor([False, True, True, False, True, False])
    scores = tagging_scores(gold, predicted, unseen, ["A", "B", "C", "D"])
    assert scores["acc"] == pytest.approx(4 / 6) and scores["acc_unseen"] == pytest.approx(1 / 3)
    assert scores["unseen_rate"] == pytest.approx(0.5)
    assert scores["acc/A"] == pytest.approx(0.5) and scores["acc/B"] == 1.0 and scores["acc/C"] == pytest.approx(2 / 3)
    assert "acc/D" not in scores  # absent from the gold tags


def test_options_and_tokenizers_are_checked(compose_config):
    cfg = compose_config(["task=tagging", "encoder.hidden_size=8"])
    tokenizers = {
        "words": WordTokenizer().fit(["a b"]).state(),
        "chars": CharTokenizer().fit(["ab"]).state(),
        "tags": LabelVocabulary().fit(["X", "Y"]).state(),
    }
    task = TASKS.build(
        container(cfg.task), tokenizers=tokenizers, encoder=container(cfg.encoder), head=container(cfg.head)
    )
    assert task.encoder.bidirectional and task.monitor == ("val/acc", "max")
    assert task.tag([["a", "zz"], []]) and task.tag([]) == []
    with pytest.raises(ConfigError, match=r"task.word_dropout=1.0: expected a number in \[0, 1\)"):
        TASKS.build(
            {**container(cfg.task), "word_dropout": 1.0},
            "task",
            tokenizers=tokenizers,
            encoder=container(cfg.encoder),
            head=container(cfg.head),
        )
    with pytest.raises(
        ConfigError,
        match=r"task 'tagging' cannot use head 'lm' \(head.name\): it needs a TaggerHead; "
        r"choose from: crf_tagger, softmax_tagger",
    ):
        TASKS.build(container(cfg.task), tokenizers=tokenizers, encoder=container(cfg.encoder), head={"name": "lm"})
    with pytest.raises(ConfigError, match="missing: chars"):
        TASKS.build(
            container(cfg.task),
            tokenizers={k: v for k, v in tokenizers.items() if k != "chars"},
            encoder=container(cfg.encoder),
            head=container(cfg.head),
        )


def test_crf_head_trains_a_step(compose_config):
    cfg = compose_config(["task=tagging", "head=crf_tagger", "encoder.hidden_size=8"])
    tokenizers = {
        "words": WordTokenizer().fit(["a b"]).state(),
        "chars": CharTokenizer().fit(["ab"]).state(),
        "tags": LabelVocabulary().fit(["X", "Y"]).state(),
    }
    task = TASKS.build(
        container(cfg.task), tokenizers=tokenizers, encoder=container(cfg.encoder), head=container(cfg.head)
    )
    from seqtasks.data.tagging import CollateSentences, FormTable

    table = FormTable(task.words, task.chars)
    encoded = [table.encode(s) for s in (["a", "b", "a"], ["b"])]
    for item, tags in zip(encoded, ([0, 1, 0], [1]), strict=True):
        item.tag_ids = tags
    batch = CollateSentences(task.words.vocab.pad_id, task.chars.vocab.pad_id, task.words.vocab.unk_id)(
        list(enumerate(encoded))
    )
    loss = task.head.loss(task(batch), batch.tags, batch.mask)
    loss.backward()
    assert loss.item() > 0 and task.char_encoder.embedding.weight.grad.abs().sum() > 0
    assert [len(t) for t in task.tag([["a", "b", "a"], ["b"]])] == [3, 1]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_scores_every_sentence_once(tmp_path):
    # 10 words a batch: the 9 val sentences come in 7 batches, so DDP repeats one on the second rank.
    files = {"train": random_sentences(40, 0), "val": random_sentences(9, 1)}
    for split, sentences in files.items():
        (tmp_path / f"{split}.conllu").write_text(conllu(sentences), encoding="utf-8")
    tiny = [arg for arg in TINY if not arg.startswith(("trainer.max_epochs", "data.max_tokens"))]
    seqtasks(
        "experiment=ud_ewt_pos",
        *tiny,
        "trainer.max_epochs=2",
        "data.max_tokens=10",
        *(f"data.{split}={tmp_path / f'{split}.conllu'}" for split in files),
        "data.test=null",
        "trainer.precision=32-true",
        "trainer=ddp",
        "trainer.devices=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single = validate_in_one_process(tmp_path / "run" / "checkpoints" / "best.ckpt")
    for key in ("val/acc", "val/acc_unseen", "val/loss"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-6), key
