"""Parallel text: readers (two aligned files or a TSV) and the translation datamodules
(`parallel`, `multi30k`): batches, truncation, vocabularies, and Lightning driving the epochs."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import quiet_trainer

from seqtasks.configuration.registry import DATASETS
from seqtasks.data.parallel import read_parallel, read_parallel_tsv
from seqtasks.data.translation import Multi30k, ParallelData, TranslationBatch
from seqtasks.errors import ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

DE = [
    "Ein Hund läuft.",
    "Zwei Kinder spielen im Park.",
    "Eine Frau liest ein Buch.",
    "Ein Mann.",
    "Die Katze schläft auf dem Sofa neben dem Fenster.",
]
EN = [
    "A dog runs.",
    "Two children play in the park.",
    "A woman reads a book.",
    "A man.",
    "The cat sleeps on the sofa next to the window.",
]
CHAR = {"name": "char"}


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def files(tmp_path) -> dict[str, list[str]]:
    out = {}
    for split, n in (("train", 40), ("val", 5), ("test", 5)):
        de = (DE * 8)[:n]
        en = (EN * 8)[:n]
        out[split] = [str(write(tmp_path / f"{split}.de", de)), str(write(tmp_path / f"{split}.en", en))]
    return out


# --- readers ---------------------------------------------------------------------------------------
def test_reads_gzip_and_plain_parallel_files(tmp_path):
    source = write(tmp_path / "a.de.gz", DE, gz=True)
    target = write(tmp_path / "a.en", EN)
    assert read_parallel(source, target) == list(zip(DE, EN, strict=True))


def test_keeps_empty_lines_and_strips_only_the_line_break(tmp_path):
    source = tmp_path / "s.txt"
    source.write_bytes(b"  padded  \r\n\nlast")
    target = write(tmp_path / "t.txt", ["a", "", "c"])
    assert read_parallel(source, target) == [("  padded  ", "a"), ("", ""), ("last", "c")]


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    source = write(tmp_path / "train.de", DE)
    target = write(tmp_path / "train.en", EN[:3])
    with pytest.raises(DataError) as caught:
        read_parallel(source, target)
    message = str(caught.value)
    assert str(source) in message and str(target) in message
    assert "5 lines" in message and "3 lines" in message


def test_invalid_utf8_names_file_and_line(tmp_path):
    source = tmp_path / "bad.de"
    source.write_bytes(b"gut\nschl\xe4ft\n")
    target = write(tmp_path / "ok.en", ["good", "sleeps"])
    with pytest.raises(DataError, match=rf"{source}:2: invalid UTF-8"):
        read_parallel(source, target)


def test_reads_tsv_pairs(tmp_path):
    path = tmp_path / "pairs.tsv.gz"
    path.write_bytes(gzip.compress(b"Ein Hund.\tA dog.\r\n\n\tonly target\nonly source\t\n"))
    assert read_parallel_tsv(path) == [("Ein Hund.", "A dog."), ("", ""), ("", "only target"), ("only source", "")]


@pytest.mark.parametrize(("line", "tabs"), [("no tab here", 0), ("a\tb\tc", 2)])
def test_tsv_line_without_exactly_one_tab_names_file_and_line(tmp_path, line, tabs):
    path = tmp_path / "pairs.tsv"
    path.write_text(f"Ein Hund.\tA dog.\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_parallel_tsv(path)
    assert str(caught.value).startswith(f"{path}:2: ") and f"found {tabs} tabs" in str(caught.value)


# --- datamodule ------------------------------------------------------------------------------------
def build(files, tokenizer=CHAR, **options) -> ParallelData:
    data = DATASETS.build({"name": "parallel", "train": files["train"], "val": files["val"], **options})
    data.build_tokenizers(tokenizer)
    return data


def test_batches_have_bos_eos_and_padding_in_place(files):
    data = build(files, max_tokens=400)
    tokenizer = data.tokenizers["target"]
    pad, bos, eos = tokenizer.vocab.pad_id, tokenizer.vocab.bos_id, tokenizer.vocab.eos_id
    batches = list(data.val_dataloader())
    assert sum(len(b) for b in batches) == 5
    for batch in batches:
        assert isinstance(batch, TranslationBatch)
        B = len(batch.indices)
        assert batch.source.dtype == batch.target_in.dtype == batch.target_out.dtype == torch.long
        assert batch.source.shape == (B, int(batch.source_lengths.max()))
        assert batch.target_in.shape == batch.target_out.shape
        for row, index in enumerate(batch.indices):
            source_ids = tokenizer.encode(DE[index])
            target_ids = tokenizer.encode(EN[index])
            n, t = len(source_ids), len(target_ids)
            assert batch.references[row] == EN[index]
            assert int(batch.source_lengths[row]) == n
            assert batch.source[row, :n].tolist() == source_ids
            assert (batch.source[row, n:] == pad).all()
            assert batch.target_in[row, : t + 1].tolist() == [bos, *target_ids]
            assert batch.target_out[row, : t + 1].tolist() == [*target_ids, eos]
            assert (batch.target_in[row, t + 1 :] == pad).all() and (batch.target_out[row, t + 1 :] == pad).all()


def test_val_batches_cover_the_file_once_in_length_order(files):
    data = build(files, max_tokens=60, val_max_tokens=100)
    batches = list(data.val_dataloader())
    assert sorted(i for b in batches for i in b.indices) == list(range(5))
    for batch in batches:
        assert batch.source.numel() <= 100 or len(batch) == 1


def test_train_batches_respect_max_tokens_and_change_with_the_epoch(files):
    data = build(files, max_tokens=120)
    loader = data.train_dataloader()
    epoch0 = [b.indices for b in loader]
    assert sorted(i for b in epoch0 for i in b) == list(range(40))
    for batch in loader:
        assert max(batch.source.shape[1], batch.target_in.shape[1]) * len(batch) <= 120 or len(batch) == 1
    loader.batch_sampler.sampler.set_epoch(1)  # what Lightning does at each epoch start
    assert [b.indices for b in loader] != epoch0


def test_truncation_is_counted_once_and_warned(files, caplog):
    data = build(files, max_length=20)
    with caplog.at_level(logging.WARNING):
        batches = list(data.train_dataloader()) + list(data.train_dataloader())
    # char tokenizer: sentences 1, 2 and 4 of every 5 exceed 20 characters (source or target)
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert warnings == ["truncated 24 of 40 train sentences to data.max_length=20 tokens (24 sources, 24 targets)"]
    for batch in batches:
        assert batch.source.shape[1] <= 20 and batch.target_in.shape[1] <= 20
    long = next(b for b in batches if 4 in b.indices)
    assert long.target_out[long.indices.index(4), 19] == data.tokenizers["target"].vocab.eos_id
    validation = next(b for b in data.val_dataloader() if 4 in b.indices)
    assert validation.references[validation.indices.index(4)] == EN[4]  # the raw, untruncated line


def test_training_pairs_with_an_empty_side_are_dropped(tmp_path, caplog):
    train = write(tmp_path / "train.tsv", ["Ein Hund.\tA dog.", "\tonly target", "nur Quelle\t", "Ja.\tYes."])
    val = write(tmp_path / "val.tsv", ["Ein Hund.\tA dog.", "\t", "Ja.\t"])
    with caplog.at_level(logging.WARNING):
        data = DATASETS.build({"name": "parallel", "train": str(train), "val": str(val)})
        data.build_tokenizers(CHAR)
        train_pairs = sum(len(b) for b in data.train_dataloader())
        val_references = sorted(r for b in data.val_dataloader() for r in b.references)
    assert train_pairs == 2  # training keeps no text: its references are not kept
    assert "dropped 2 of 4 train pairs with an empty side" in caplog.text
    assert val_references == ["", "A dog."]  # an empty reference is still scored
    assert "dropped 1 of 3 val pairs with an empty source" in caplog.text


def test_joint_vocabulary_is_one_tokenizer_fitted_on_both_sides(files):
    data = build(files, {"name": "sentencepiece", "vocab_size": 60})
    assert data.tokenizers["source"] is data.tokenizers["target"]
    tokenizer = data.tokenizers["source"]
    assert tokenizer.decode(tokenizer.encode(DE[1])) == DE[1]
    assert tokenizer.decode(tokenizer.encode(EN[1])) == EN[1]


def test_separate_vocabularies_are_fitted_per_side(files):
    data = build(files, joint_vocabulary=False)
    source, target = data.tokenizers["source"], data.tokenizers["target"]
    assert source is not target
    assert "ä" in source.vocab and "ä" not in target.vocab  # the German side only
    assert "y" in target.vocab and "y" not in source.vocab  # the English side only


def test_tokenizers_are_fitted_on_training_data_only(tmp_path):
    train = write(tmp_path / "train.tsv", ["ab\tab"])
    val = write(tmp_path / "val.tsv", ["xyz\txyz"])
    data = ParallelData(train=str(train), val=str(val))
    data.build_tokenizers(CHAR)
    assert "x" not in data.tokenizers["source"].vocab


def test_use_tokenizers_sets_fitted_ones(files):
    fitted = build(files).tokenizers
    data = ParallelData(train=files["train"], val=files["val"])
    data.use_tokenizers(fitted)
    assert data.tokenizers["source"] is fitted["source"]
    assert sum(len(b) for b in data.val_dataloader()) == 5


def test_test_dataloader_is_an_empty_list_without_test(files):
    assert build(files).test_dataloader() == []
    with_test = build(files, test=files["test"])
    assert sum(len(b) for b in with_test.test_dataloader()) == 5


def test_batch_moves_to_a_device_under_lightning(files):
    from lightning.fabric.utilities.apply_func import move_data_to_device

    batch = next(iter(build(files).val_dataloader()))
    moved = move_data_to_device(batch, torch.device("meta"))
    assert moved.source.device.type == "meta" and moved.target_out.device.type == "meta"
    assert moved.references == batch.references and batch.source.device.type == "cpu"


@pytest.mark.parametrize("bad", [3, ["only_one"], ["a", "b", "c"], {"source": "a"}, ""])
def test_bad_split_spec_explains_both_forms(bad):
    with pytest.raises(ConfigError, match=r"data\.train must be either one TSV file .* or two line-aligned files"):
        ParallelData(train=bad, val="val.tsv")


def test_lightning_drives_the_epoch_of_the_training_order(files):
    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen: dict[int, list[list[int]]] = {}

        def training_step(self, batch, batch_idx):
            assert isinstance(batch, TranslationBatch)
            self.seen.setdefault(self.current_epoch, []).append(batch.indices)
            return (self.weight * batch.source.float().mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = build(files, max_tokens=120)
    model = Recorder()
    trainer = quiet_trainer(max_epochs=3, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    assert sorted(model.seen) == [0, 1, 2]
    for epoch, batches in model.seen.items():
        assert sorted(i for b in batches for i in b) == list(range(40))
        expected = data.train_dataloader().batch_sampler.batches(epoch)
        assert batches == expected
    assert model.seen[0] != model.seen[1]


# --- multi30k --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source_lang": "cs"}, r"data\.source_lang='cs': expected one of 'de', 'en', 'fr'"),
        ({"target_lang": "xx"}, r"data\.target_lang='xx': expected one of 'de', 'en', 'fr'"),
        ({"source_lang": "en", "target_lang": "en"}, r"both 'en'; choose two different languages from: de, en, fr"),
        ({"train": "x.tsv"}, r"multi30k' knows its files; data\.train cannot be set"),
    ],
)
def test_multi30k_validates_its_options(options, message):
    with pytest.raises(ConfigError, match=message):
        DATASETS.build({"name": "multi30k", **options}, "data")


def test_multi30k_missing_file_names_the_path(tmp_path):
    data = Multi30k(root=str(tmp_path), source_lang="fr", target_lang="de", download=False)
    with pytest.raises(
        DataError, match=rf"{tmp_path}/multi30k/train\.fr\.gz: dataset file not found.*data\.download=false"
    ):
        data.read("train")


def test_multi30k_reads_files_under_the_root(tmp_path):
    (tmp_path / "multi30k").mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        write(tmp_path / "multi30k" / f"{split}.de.gz", DE, gz=True)
        write(tmp_path / "multi30k" / f"{split}.en.gz", EN, gz=True)
    data = Multi30k(root=str(tmp_path), max_tokens=100)
    data.build_tokenizers(CHAR)
    assert list(data.read("test")) == list(zip(DE, EN, strict=True))
    assert sum(len(b) for b in data.test_dataloader()) == 5
    assert Multi30k(root=str(tmp_path), test_set=None).test_dataloader() == []


def real_multi30k_root() -> Path | None:
    for root in (os.environ.get("SEQTASKS_DATA"), SHARED_DATA):
        if root and (Path(root) / "multi30k" / "train.de.gz").is_file():
            return Path(root)
    return None


@pytest.mark.skipif(real_multi30k_root() is None, reason="Multi30k is not in $SEQTASKS_DATA or ../shared/data")
def test_real_multi30k_has_the_published_sizes():
    data = DATASETS.build({"name": "multi30k", "root": str(real_multi30k_root())})
    assert [len(list(data.read(split))) for split in ("train", "val", "test")] == [29000, 1014, 1000]
    source, target = next(iter(data.read("train")))
    assert source.startswith("Zwei junge weiße Männer") and target.startswith("Two young, White males")
