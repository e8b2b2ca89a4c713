"""Contiguous-stream batching (StreamBatches) and the text-file datamodules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import quiet_trainer
from torch.utils.data import DataLoader

import seqtasks.tokenizers  # noqa: F401  (registers the 'char' tokenizer)
from seqtasks.configuration.registry import DATASETS
from seqtasks.data.stream import StreamBatches, StreamOrder
from seqtasks.data.text_stream import TextStreamData, TinyShakespeare
from seqtasks.errors import ConfigError, DataError

# ---------------------------------------------------------------- StreamBatches


def test_a_stream_too_short_for_one_batch_raises_value_error():
    with pytest.raises(ValueError, match="batch_size"):
        list(StreamBatches(torch.arange(12), batch_size=3, seq_len=4))  # needs 3 * 4 + 1 = 13
    assert len(list(StreamBatches(torch.arange(13), batch_size=3, seq_len=4))) == 1


def test_a_memory_mapped_stream_gives_the_same_batches_as_a_tensor(tmp_path):
    ids = np.arange(500, dtype="<u2")
    ids.tofile(tmp_path / "ids")
    mapped = np.memmap(tmp_path / "ids", dtype="<u2", mode="r", shape=(500,))
    pairs = zip(_batches(StreamBatches(mapped, 4, 7)), _batches(StreamBatches(torch.arange(500), 4, 7)), strict=True)
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in pairs)


def test_a_stream_resumed_within_an_epoch_goes_on_from_its_batch():
    stream = StreamBatches(torch.arange(200), 2, 5)
    whole = [(b.position, b.inputs) for b in stream]
    stream.start_at(7)
    resumed = [(b.position, b.inputs) for b in stream]
    assert [p for p, _ in resumed] == list(range(7, len(whole)))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed, whole[7:], strict=True))
    assert len([b for b in stream]) == len(whole)  # the next epoch starts at 0 again


def _batches(dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(batch.inputs, batch.targets) for batch in dataset]


@pytest.mark.parametrize(
    ("n", "batch_size", "seq_len"), [(100, 4, 5), (101, 4, 5), (81, 4, 5), (1000, 3, 7), (9, 2, 4), (64, 1, 8)]
)
def test_batches_continue_rows_and_shift_targets(n, batch_size, seq_len):
    dataset = StreamBatches(torch.arange(n), batch_size, seq_len)
    batches = _batches(dataset)
    assert len(dataset) == len(batches) == (n - 1) // (batch_size * seq_len)
    assert len(batches) >= 1
    for inputs, targets in batches:
        assert inputs.shape == targets.shape == (batch_size, seq_len)
        assert inputs.dtype == targets.dtype == torch.long
        assert torch.equal(targets, inputs + 1)  # targets: inputs shifted by one token
    for (inputs, _), (next_inputs, _) in zip(batches, batches[1:], strict=False):
        # Row b of batch i+1 continues row b of batch i exactly.
        assert torch.equal(next_inputs[:, 0], inputs[:, -1] + 1)
    # Every row is one contiguous run of the stream, and the rows do not overlap.
    rows = torch.cat([inputs for inputs, _ in batches], dim=1)
    length = rows.shape[1]
    for b in range(batch_size):
        assert torch.equal(rows[b], torch.arange(b * length, (b + 1) * length))


def test_batches_through_a_dataloader_keep_stream_order():
    dataset = StreamBatches(torch.arange(200), 4, 6)
    direct = _batches(dataset)
    order = StreamOrder(dataset)
    loaded = [(batch.inputs, batch.targets) for batch in DataLoader(dataset, sampler=order, batch_size=None)]
    assert len(loaded) == len(direct) == len(dataset)
    for (a, b), (c, d) in zip(direct, loaded, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)


@pytest.mark.parametrize(("n", "batch_size", "seq_len"), [(500, 4, 7), (97, 2, 8), (64, 1, 8)])
def test_a_shifted_epoch_starts_its_rows_at_its_offset_and_keeps_them_contiguous(n, batch_size, seq_len):
    stream = StreamBatches(torch.arange(n), batch_size, seq_len, shift_each_epoch=True)
    offsets = []
    for epoch in range(6):
        stream.set_epoch(epoch)
        batches = _batches(stream)
        assert len(batches) == len(stream) == (n - seq_len) // (batch_size * seq_len)  # the same every epoch
        rows = torch.cat([inputs for inputs, _ in batches], dim=1)
        offset, length = int(rows[0, 0]), rows.shape[1]
        assert 0 <= offset < seq_len
        for b in range(batch_size):  # contiguous rows after the offset, targets one token on
            assert torch.equal(rows[b], torch.arange(offset + b * length, offset + (b + 1) * length))
        assert all(torch.equal(targets, inputs + 1) for inputs, targets in batches)
        offsets.append(offset)
    assert len(set(offsets)) > 1  # truncation points move between epochs
    again = StreamBatches(torch.arange(n), batch_size, seq_len, shift_each_epoch=True)
    again.set_epoch(3)
    assert int(_batches(again)[0][0][0, 0]) == offsets[3]  # a function of the epoch: a resumed run sees the same


def test_an_unshifted_stream_ignores_the_epoch():
    stream = StreamBatches(torch.arange(200), 2, 5)
    first = _batches(stream)
    stream.set_epoch(4)
    assert all(torch.equal(a, c) for (a, _), (c, _) in zip(first, _batches(stream), strict=True))


def test_a_shifted_stream_resumed_within_an_epoch_goes_on_from_its_batch():
    stream = StreamBatches(torch.arange(300), 2, 5, shift_each_epoch=True)
    stream.set_epoch(2)
    whole = _batches(stream)
    stream.start_at(7)
    resumed = _batches(stream)
    assert all(torch.equal(a, c) for (a, _), (c, _) in zip(resumed, whole[7:], strict=True))
    assert len(resumed) == len(whole) - 7


def test_a_split_too_short_for_a_shifted_batch_names_the_file_and_the_spare_it_needs(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abcdefghij" * 4, encoding="utf-8")  # 20 training tokens: 2 x 8 + 1 fit, + 7 spare do not
    fixed = TextStreamData(path=str(path), batch_size=2, seq_len=8, val_fraction=0.5)
    fixed.build_tokenizers({"name": "char"})
    assert len(fixed.encoded("train")) == 20
    shifted = TextStreamData(path=str(path), batch_size=2, seq_len=8, val_fraction=0.5, shift_each_epoch=True)
    shifted.build_tokenizers({"name": "char"})
    with pytest.raises(DataError, match=r"short.txt.*20 tokens.*2 rows x 8 steps \+ 1 \+ 7 for the shift = 24 needed"):
        shifted.encoded("train")
    assert len(shifted.encoded("val")) == 20  # validation is never shifted


def test_lightning_sets_the_epoch_of_a_shifted_training_stream(tmp_path):
    """Through the datamodule's loader and a real Trainer: each epoch's first batch starts at that
    epoch's offset (Lightning calls the sampler's set_epoch), and validation is never shifted."""
    import lightning as L

    path = tmp_path / "text.txt"
    path.write_text("".join(chr(ord("a") + i % 26) for i in range(2000)), encoding="utf-8")
    data = TextStreamData(path=str(path), batch_size=2, seq_len=16, val_fraction=0.2, shift_each_epoch=True)
    data.build_tokenizers({"name": "char"})

    class FirstBatches(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.train_firsts, self.val_firsts = [], []

        def training_step(self, batch, index):
            if index == 0:
                self.train_firsts.append(batch.inputs[0].tolist())
            return self.weight**2

        def validation_step(self, batch, index):
            if index == 0:
                self.val_firsts.append(batch.inputs[0].tolist())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    module = FirstBatches()
    trainer = quiet_trainer(max_epochs=4, use_distributed_sampler=False)
    trainer.fit(module, datamodule=data)
    train_ids = np.asarray(data.encoded("train"))
    expected = []
    for epoch in range(4):
        stream = StreamBatches(train_ids, 2, 16, shift_each_epoch=True)
        stream.set_epoch(epoch)
        expected.append(train_ids[stream.offset() : stream.offset() + 16].tolist())
    assert module.train_firsts == expected
    assert len({tuple(first) for first in expected}) > 1
    val_ids = np.asarray(data.encoded("val"))
    assert module.val_firsts == [val_ids[:16].tolist()] * 4


def test_stream_batches_too_short_raises_value_error():
    dataset = StreamBatches(torch.arange(8), batch_size=2, seq_len=4)
    assert len(dataset) == 0
    with pytest.raises(ValueError, match="batch_size"):
        _batches(dataset)


def _fake_ddp(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda *args, **kwargs: rank)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda *args, **kwargs: world)


@pytest.mark.parametrize(("n", "batch_size", "seq_len"), [(200, 3, 5), (61, 3, 5), (1000, 2, 7)])
def test_ddp_ranks_read_disjoint_rows_covering_single_process_rows(monkeypatch, n, batch_size, seq_len):
    tokens = torch.arange(n)
    single = StreamBatches(tokens, 2 * batch_size, seq_len)
    single_batches = _batches(single)

    per_rank = []
    for rank in range(2):
        with monkeypatch.context() as patch:
            _fake_ddp(patch, rank, 2)
            dataset = StreamBatches(tokens, batch_size, seq_len)
            batches = _batches(dataset)
            assert len(dataset) == len(batches)
        per_rank.append(batches)

    assert torch.distributed.is_initialized() is False  # the fake DDP is gone again
    assert len(per_rank[0]) == len(per_rank[1]) == len(single_batches)
    for i, (inputs, targets) in enumerate(single_batches):
        (in0, tg0), (in1, tg1) = per_rank[0][i], per_rank[1][i]
        assert in0.shape == in1.shape == (batch_size, seq_len)
        # Together the two ranks see exactly the 2B rows of the single process, rank 0 first.
        assert torch.equal(torch.cat([in0, in1]), inputs)
        assert torch.equal(torch.cat([tg0, tg1]), targets)
    # Disjoint: no token is an input on both ranks.
    seen0 = torch.cat([inputs.flatten() for inputs, _ in per_rank[0]])
    seen1 = torch.cat([inputs.flatten() for inputs, _ in per_rank[1]])
    assert not set(seen0.tolist()) & set(seen1.tolist())
    assert len(set(seen0.tolist())) == seen0.numel()


# ---------------------------------------------------------------- TextStreamData / TinyShakespeare

TRAIN_PART = "ab ba\n" * 15  # 90 characters, no 'z'
VAL_PART = "abz zab\nz "  # 10 characters; 'z' only here
TEXT = TRAIN_PART + VAL_PART


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_default_split_is_90_10_in_order(text_file):
    data = TextStreamData(path=str(text_file), batch_size=2, seq_len=4)
    train, val = "".join(data.read("train").chunks()), "".join(data.read("val").chunks())
    assert train == TRAIN_PART and val == VAL_PART
    assert train + val == TEXT


def test_tokenizer_is_fitted_on_the_training_part_only(text_file):
    data = TextStreamData(path=str(text_file), batch_size=2, seq_len=4)
    tokenizers = data.build_tokenizers({"name": "char"})
    tokenizer = tokenizers["text"]
    assert data.tokenizers["text"] is tokenizer
    assert "z" not in tokenizer.vocab
    assert set("ab \n") <= set(tokenizer.vocab.tokens)
    unk = tokenizer.vocab.unk_id
    assert unk is not None
    assert tokenizer.encode("z") == [unk]
    assert unk not in tokenizer.encode(TRAIN_PART)

    train = [(b.inputs, b.targets) for b in data.train_dataloader()]
    val = [(b.inputs, b.targets) for b in data.val_dataloader()]
    assert len(train) == (90 - 1) // (2 * 4) and len(val) == (10 - 1) // (2 * 4)
    for inputs, targets in train + val:
        assert inputs.shape == targets.shape == (2, 4)
    # The first training row starts at the start of the text.
    assert tokenizer.decode(train[0][0][0].tolist()) == TRAIN_PART[:4]
    # The validation stream holds the val-only character as <unk>.
    val_ids = torch.cat([torch.cat([inputs, targets]) for inputs, targets in val]).flatten().tolist()
    assert unk in val_ids


def test_val_batch_size_defaults_to_batch_size(text_file):
    assert TextStreamData(path=str(text_file), batch_size=2, seq_len=4).val_batch_size == 2
    assert TextStreamData(path=str(text_file), batch_size=2, seq_len=4, val_batch_size=1).val_batch_size == 1


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_val_fraction_outside_open_unit_interval_is_a_config_error(text_file, fraction):
    with pytest.raises(ConfigError, match=r"data.val_fraction=.*: expected a number in \(0, 1\)"):
        DATASETS.build({"name": "text_file", "path": str(text_file), "val_fraction": fraction}, "data")


def test_text_file_without_path_is_a_config_error():
    data = TextStreamData(batch_size=2, seq_len=4)
    with pytest.raises(ConfigError, match="data.path"):
        data.read("train")


def test_text_file_missing_is_a_data_error(tmp_path):
    data = TextStreamData(path=str(tmp_path / "absent.txt"), batch_size=2, seq_len=4)
    with pytest.raises(DataError) as caught:
        data.read("train")
    assert str(tmp_path / "absent.txt") in str(caught.value)


def test_tinyshakespeare_missing_names_the_expected_file(tmp_path):
    data = TinyShakespeare(root=str(tmp_path), download=False, batch_size=2, seq_len=4)
    with pytest.raises(DataError) as caught:
        data.read("train")
    expected = tmp_path / "tinyshakespeare" / "input.txt"
    assert caught.value.path == expected
    assert str(expected) in str(caught.value)
    assert "data.download=false" in str(caught.value)
    assert not expected.exists()


def test_tinyshakespeare_reads_the_file_under_root(tmp_path):
    expected = tmp_path / "tinyshakespeare" / "input.txt"
    expected.parent.mkdir()
    expected.write_text(TEXT, encoding="utf-8")
    data = TinyShakespeare(root=str(tmp_path), batch_size=2, seq_len=4)
    assert data.text_path() == expected
    assert ("".join(data.read("train").chunks()), "".join(data.read("val").chunks())) == (TRAIN_PART, VAL_PART)


def test_stream_batches_work_where_torch_distributed_is_unavailable(monkeypatch):
    # Builds without distributed support have no usable is_initialized(); only is_available().
    def unusable(*args, **kwargs):
        raise AttributeError("torch.distributed is not available in this build")

    monkeypatch.setattr(torch.distributed, "is_available", lambda: False)
    monkeypatch.setattr(torch.distributed, "is_initialized", unusable)
    dataset = StreamBatches(torch.arange(41), batch_size=2, seq_len=4)
    assert len(dataset) == len(_batches(dataset)) == 5
