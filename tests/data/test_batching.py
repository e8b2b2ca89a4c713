"""TokenBatchSampler: every example once per epoch, token budget kept, epoch-dependent but
reproducible order, and equal-length DDP shards."""

from __future__ import annotations

import random

import pytest

from seqtasks.data import batching
from seqtasks.data.batching import TokenBatchSampler


def random_lengths(n: int = 500, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 40) for _ in range(n)]


def flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_index_exactly_once_per_epoch(shuffle):
    lengths = random_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=200, shuffle=shuffle, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(flat(batches)) == list(range(len(lengths)))
        assert len(sampler) == len(batches)


def test_padded_size_stays_within_max_tokens_except_single_long_examples():
    lengths = [*random_lengths(), 250, 300]  # two examples longer than the budget
    sampler = TokenBatchSampler(lengths, max_tokens=200, shuffle=True)
    batches = list(sampler)
    for batch in batches:
        padded = max(lengths[i] for i in batch) * len(batch)
        assert padded <= 200 or len(batch) == 1
    assert [len(b) for b in batches if max(lengths[i] for i in b) > 200] == [1, 1]


def test_batches_group_similar_lengths():
    lengths = random_lengths(2000)
    batches = list(TokenBatchSampler(lengths, max_tokens=400, shuffle=True))
    padding = sum(max(lengths[i] for i in b) * len(b) for b in batches) - sum(lengths)
    assert padding / sum(lengths) < 0.1


def test_unshuffled_order_is_sorted_and_independent_of_epoch():
    lengths = random_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=200, shuffle=False)
    first = list(sampler)
    assert [lengths[i] for i in flat(first)] == sorted(lengths)
    sampler.set_epoch(5)
    assert list(sampler) == first


def test_shuffled_order_differs_between_epochs_and_repeats_for_same_seed_and_epoch():
    lengths = random_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=200, shuffle=True, seed=7)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    # batch contents change too, not only their order
    assert sorted(map(sorted, epoch0)) != sorted(map(sorted, epoch1))

    again = TokenBatchSampler(lengths, max_tokens=200, shuffle=True, seed=7)
    again.set_epoch(1)
    assert list(again) == epoch1
    other_seed = TokenBatchSampler(lengths, max_tokens=200, shuffle=True, seed=8)
    other_seed.set_epoch(1)
    assert list(other_seed) != epoch1


def test_lightning_reaches_set_epoch_through_sampler():
    # Lightning calls dataloader.batch_sampler.sampler.set_epoch(epoch) at each epoch start.
    sampler = TokenBatchSampler([3, 1, 2], max_tokens=4, shuffle=True)
    sampler.sampler.set_epoch(4)
    assert sampler.epoch == 4


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_ddp_ranks_split_the_batches_evenly(monkeypatch, world, shuffle):
    lengths = random_lengths(301)
    single = TokenBatchSampler(lengths, max_tokens=150, shuffle=shuffle, seed=1)
    single.set_epoch(2)
    all_batches = list(single)

    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(batching, "rank_and_world", lambda rank=rank: (rank, world))
        sampler = TokenBatchSampler(lengths, max_tokens=150, shuffle=shuffle, seed=1)
        sampler.set_epoch(2)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        per_rank.append(batches)

    assert len({len(b) for b in per_rank}) == 1  # every rank the same number of batches
    assert len(per_rank[0]) == -(-len(all_batches) // world)
    # interleaved, the ranks' batches are the single-process batches, then repeats from the start
    interleaved = [per_rank[r][k] for k in range(len(per_rank[0])) for r in range(world)]
    assert interleaved[: len(all_batches)] == all_batches
    assert interleaved[len(all_batches) :] == all_batches[: len(interleaved) - len(all_batches)]
    assert set(flat(interleaved)) == set(range(len(lengths)))


def test_empty_lengths_yield_no_batches():
    assert list(TokenBatchSampler([], max_tokens=10, shuffle=True)) == []
