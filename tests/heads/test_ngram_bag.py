"""The bag of hashed n-grams against a reference that enumerates each sequence's n-grams one by one
in Python: the same buckets, the mean of their rows, and padding that changes nothing."""

import torch

from seqtasks.data.batching import pad_sequences
from seqtasks.heads.ngram_bag import MULTIPLIER, NgramBag

VOCAB, CLASSES, ORDER, BUCKETS, DIM = 11, 3, 4, 97, 5


def reference_ids(sequence: list[int], order: int, buckets: int) -> list[int]:
    """Every n-gram (n = 1..order) of start + sequence + end, hashed with Python integers."""
    marked = [VOCAB, *sequence, VOCAB + 1]
    ids = []
    for n in range(1, order + 1):
        for first in range(len(marked) - n + 1):
            hashed = n
            for token in marked[first : first + n]:
                hashed = (hashed * MULTIPLIER + token) % buckets
            ids.append(hashed)
    return ids


def test_buckets_and_logits_match_one_by_one_enumeration():
    torch.manual_seed(0)
    bag = NgramBag(VOCAB, CLASSES, ORDER, BUCKETS, DIM)
    torch.nn.init.normal_(bag.project.weight)  # zero at the start: give the logits something to show
    sequences = [[3, 1, 4, 1, 5, 9, 2], [6], [5, 3, 5], [2, 7]]
    tokens, lengths = pad_sequences(sequences, pad_id=8)
    ids, real = bag.ngram_ids(tokens, lengths)
    logits = bag(tokens, lengths)
    for row, sequence in enumerate(sequences):
        expected = reference_ids(sequence, ORDER, BUCKETS)
        assert sorted(ids[row][real[row]].tolist()) == sorted(expected)
        mean = bag.embedding.weight[expected].mean(0)
        torch.testing.assert_close(logits[row], bag.project(mean))


def test_padding_and_batch_neighbours_change_nothing():
    torch.manual_seed(1)
    bag = NgramBag(VOCAB, CLASSES, ORDER, BUCKETS, DIM)
    torch.nn.init.normal_(bag.project.weight)
    sequences = [[1, 2, 3, 4, 5, 6, 7, 8], [9, 2]]
    together = bag(*pad_sequences(sequences, pad_id=0))
    other_padding = bag(*pad_sequences(sequences, pad_id=10))
    alone = bag(*pad_sequences(sequences[1:], pad_id=0))
    torch.testing.assert_close(together, other_padding)
    torch.testing.assert_close(together[1:], alone)


def test_starts_at_zero_logits():
    bag = NgramBag(VOCAB, CLASSES, ORDER, BUCKETS, DIM)
    assert not bag(*pad_sequences([[1, 2, 3]], pad_id=0)).any()
