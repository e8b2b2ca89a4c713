"""SST-2 datamodule on tiny files in both formats: splits, optional test file, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqtasks.data.classification import NamesData, SST2Data
from seqtasks.errors import ConfigError, DataError
from seqtasks.tokenizers import WordTokenizer


@pytest.fixture
def sst_root(tmp_path) -> Path:
    folder = tmp_path / "sst2"
    (folder / "sentence_level").mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\na great film \t1\na dull , tedious mess \t0\ngreat \t1\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nan unseen masterpiece \t1\n")
    (folder / "sentence_level" / "stsa.binary.train").write_text("1 a great film\n0 a dull mess\n")
    return tmp_path


def test_reads_glue_tsv_and_has_no_test_split_by_default(sst_root):
    data = SST2Data(root=str(sst_root), max_tokens=100)
    assert list(data.read("train"))[1] == ("a dull , tedious mess", "0")
    assert list(data.read("val")) == [("an unseen masterpiece", "1")]
    assert not data.has_test
    with pytest.raises(ConfigError, match="data.test"):
        data.read("test")
    tokenizers = data.build_tokenizers({"name": "word"})
    assert tokenizers["labels"].vocab.tokens == ["0", "1"]
    tokens, label = data.encoded("val")[0]
    assert tokens.tolist() == [1, 1, 1] and label == 1  # all three dev words unseen in training -> <unk>
    assert isinstance(tokenizers["text"], WordTokenizer)


def test_sentence_level_train_file_and_absolute_test_file(sst_root, tmp_path):
    test_file = tmp_path / "new.tsv"
    test_file.write_text("sentence\tlabel\ngreat film\t1\n")
    data = SST2Data(root=str(sst_root), train="sentence_level/stsa.binary.train", test=str(test_file), max_tokens=100)
    assert list(data.read("train")) == [("a great film", "1"), ("a dull mess", "0")]
    assert data.has_test and list(data.read("test")) == [("great film", "1")]


def test_row_without_label_names_file_and_line(sst_root):
    (sst_root / "sst2" / "train.tsv").write_text("sentence\tlabel\ngood \t1\nno label here\n")
    with pytest.raises(DataError, match=r"train.tsv:3: row has no label"):
        list(SST2Data(root=str(sst_root), max_tokens=100).read("train"))


def test_unseen_label_at_test_time_names_file_and_example(sst_root, tmp_path):
    test_file = tmp_path / "odd.tsv"
    test_file.write_text("sentence\tlabel\ngreat film\t1\nmeh\tneutral\n")
    data = SST2Data(root=str(sst_root), test=str(test_file), max_tokens=100)
    data.build_tokenizers({"name": "word"})
    with pytest.raises(DataError, match=r"odd.tsv.*example 2.*neutral"):
        data.encoded("test")


def test_names_test_file_replaces_the_test_split(tmp_path):
    folder = tmp_path / "names" / "by_language"
    folder.mkdir(parents=True)
    (folder / "Russian.txt").write_text("\n".join(f"Ivanov{i}" for i in range(20)) + "\n")
    (folder / "Spanish.txt").write_text("\n".join(f"Garcia{i}" for i in range(20)) + "\n")
    test_file = tmp_path / "new_names.tsv"
    test_file.write_text("name\tlanguage\nPetrov\tRussian\nLopez\tSpanish\n")
    data = NamesData(root=str(tmp_path), test=str(test_file), max_tokens=100)
    assert data.read("test") == [("Petrov", "Russian"), ("Lopez", "Spanish")]
    assert len(data.read("train")) == 32 and data.describe("test") == str(test_file)
