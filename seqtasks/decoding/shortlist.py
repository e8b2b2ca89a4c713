"""An output-vocabulary shortlist for translation search: the decoder scores only the target tokens
that can plausibly appear, not all V of them, and the output layer (E x V, half of a step's
arithmetic in the default model) shrinks with it.

The candidates of a batch are the union of
- the `per_source` target tokens most associated with each of its source tokens, by the Dice
  coefficient 2 c(s, t) / (c(s) + c(t)) of sentence-level co-occurrence counts in the training
  pairs (Dice rather than p(t | s), which would rank the frequent target tokens first for every s);
- the `frequent` most frequent target tokens (function words, punctuation);
- the special tokens the search needs (<bos>, <eos>, <unk>).

A lexicon learned by co-occurrence counts is what fits a decode-time option: no aligner to run,
a few seconds on Multi30k's 29,000 pairs. Marian's shortlists come from fast_align lexicons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Shortlist:
    candidates: Tensor  # (V_source, per_source) target ids per source id, -1 where fewer exist
    always: Tensor  # (F,) target ids every batch keeps: the frequent ones and the specials

    @classmethod
    def learn(
        cls,
        pairs: Iterable[tuple[list[int], list[int]]],
        source_size: int,
        target_size: int,
        specials: list[int],
        per_source: int = 20,
        frequent: int = 500,
    ) -> Shortlist:
        """Count co-occurrences in (source ids, target ids) pairs and keep the best per source id."""
        keys, source_counts, target_counts = [], torch.zeros(source_size), torch.zeros(target_size)
        for source_ids, target_ids in pairs:
            source, target = torch.tensor(source_ids).unique(), torch.tensor(target_ids).unique()
            source_counts[source] += 1
            target_counts[target] += 1
            keys.append((source[:, None] * target_size + target[None, :]).flatten())  # (S'*T',) pair keys
        pair_keys, together = torch.cat(keys).unique(return_counts=True)  # (P,), (P,) c(s, t)
        source, target = pair_keys // target_size, pair_keys % target_size
        dice = 2 * together / (source_counts[source] + target_counts[target])  # (P,)
        # Best first within each source id: sort by dice, then stably by source id.
        order = dice.argsort(descending=True)
        order = order[source[order].argsort(stable=True)]
        source, target = source[order], target[order]
        group_start = torch.searchsorted(source, source, side="left")  # (P,) where each source's run starts
        rank = torch.arange(len(source)) - group_start  # (P,) position within its source's run
        keep = rank < per_source
        candidates = torch.full((source_size, per_source), -1, dtype=torch.long)
        candidates[source[keep], rank[keep]] = target[keep]
        always = torch.cat([target_counts.argsort(descending=True)[:frequent], torch.tensor(specials)]).unique()
        return cls(candidates, always)

    def vocabulary(self, source: Tensor, lengths: Tensor) -> Tensor:
        """source (B, S) ids, lengths (B,) -> the batch's candidate target ids (V',), sorted."""
        real = torch.arange(source.shape[1], device=source.device)[None, :] < lengths[:, None]  # (B, S)
        proposed = self.candidates.to(source.device)[source[real]].flatten()  # (tokens * per_source,)
        ids = torch.cat([proposed[proposed >= 0], self.always.to(source.device)])
        return ids.unique()
