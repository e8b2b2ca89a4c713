"""The shortlist's lexicon against counts done by hand, and its batch vocabularies."""

from __future__ import annotations

import torch

from seqtasks.decoding.shortlist import Shortlist

# Source ids 0..3, target ids 0..5; target 5 is in every sentence (a "the" or ".").
PAIRS = [([0, 1], [0, 5]), ([0], [0, 5]), ([1, 2], [1, 2, 5]), ([2], [2, 5]), ([3, 3], [4, 5])]


def test_candidates_rank_targets_by_dice_of_sentence_counts():
    shortlist = Shortlist.learn(PAIRS, source_size=4, target_size=6, specials=[], per_source=2, frequent=0)
    # Source 0 (2 sentences): with target 0 twice, Dice 2*2/(2+2) = 1; with target 5 twice, 2*2/(2+5).
    assert shortlist.candidates[0].tolist() == [0, 5]
    # Source 1 (2 sentences): targets 0 and 2 together once: 2/(2+2) = 0.5; target 5 twice: 4/(2+5) = 0.57;
    # target 1 (1 sentence) once: 2/(2+1) = 0.67, the best.
    assert shortlist.candidates[1, 0].item() == 1
    # Source 3 appears twice in one sentence: counted once; only targets 4 and 5 co-occur with it.
    assert shortlist.candidates[3].tolist() == [4, 5]


def test_fewer_co_occurring_targets_than_places_leave_minus_one():
    shortlist = Shortlist.learn([([0], [1])], source_size=2, target_size=3, specials=[], per_source=3, frequent=0)
    assert shortlist.candidates.tolist() == [[1, -1, -1], [-1, -1, -1]]


def test_a_batch_vocabulary_is_its_real_tokens_candidates_the_frequent_and_the_specials():
    shortlist = Shortlist.learn(PAIRS, source_size=4, target_size=6, specials=[3], per_source=1, frequent=1)
    assert shortlist.always.tolist() == [3, 5]  # target 5 is the most frequent; 3 the special
    source = torch.tensor([[0, 3], [2, 3]])  # row 0's second token is padding
    vocabulary = shortlist.vocabulary(source, lengths=torch.tensor([1, 2]))
    expected = {0, 3, 5} | {shortlist.candidates[2, 0].item(), 4}  # row 1: sources 2 and 3
    assert vocabulary.tolist() == sorted(expected)
