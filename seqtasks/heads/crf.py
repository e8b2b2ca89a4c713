"""Linear-chain conditional random field over per-step tag scores (Lafferty et al. 2001).

A tagger's encoder gives emission scores e_t(y) for each step t and tag y; the CRF adds a learned
score for every transition y -> y' and for starting and ending in each tag, and normalises over
whole tag sequences instead of step by step, so the model can learn that I-PER never follows O
(the BiLSTM-CRF of Lample et al. 2016, "Neural Architectures for Named Entity Recognition").

For a sequence of length n with tags y_1..y_n:

    s(x, y)  = start[y_1] + sum_{t=1..n} e_t(y_t) + sum_{t=2..n} A[y_{t-1}, y_t] + end[y_n]
    log p(y | x) = s(x, y) - log Z(x),   log Z(x) = logsumexp over all K^n sequences y' of s(x, y')

log Z comes from the forward algorithm in log space, O(n K^2) instead of O(K^n):

    alpha_1(k) = start[k] + e_1(k)
    alpha_t(k) = e_t(k) + logsumexp_j (alpha_{t-1}(j) + A[j, k])
    log Z      = logsumexp_k (alpha_n(k) + end[k])

and the best path from Viterbi, the same recursion with max for logsumexp plus back-pointers.
Both loop over time only and are vectorised over the batch; padded steps (mask false) carry the
previous step's values forward unchanged, so padding never changes a result.

Shapes: B batch, T steps, K tags. Masks are prefix masks (a sequence's valid steps come first)
and every sequence has at least one step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearChainCRF(nn.Module):
    """Linear-chain CRF: transition, start and end scores; log-likelihood, NLL and Viterbi decoding.

    transitions[i, j] scores moving from tag i to tag j.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"LinearChainCRF needs at least one tag, got num_tags={num_tags}")
        self.num_tags = num_tags
        # Small random scores: no transition is preferred before training (as in pytorch-crf).
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))  # (K, K) from -> to
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))  # (K,)
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))  # (K,)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Same as `log_likelihood`."""
        return self.log_likelihood(emissions, tags, mask)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(tags | x) per sequence.

        emissions (B, T, K) float, tags (B, T) long, mask (B, T) bool or None (all valid) -> (B,).
        Tags at padded steps are ignored (any value, e.g. -100, is fine).
        """
        emissions, mask = self._prepare(emissions, mask, tags)
        return self._path_score(emissions, tags, mask) - self._log_partition(emissions, mask)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean negative log-likelihood over the batch: a scalar loss."""
        return -self.log_likelihood(emissions, tags, mask).mean()

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """Viterbi: the highest-scoring tag sequence of each sequence, each as long as its mask.

        emissions (B, T, K), mask (B, T) bool or None -> B lists of tag ids.
        """
        emissions, mask = self._prepare(emissions, mask)
        B, T, K = emissions.shape
        keep = torch.arange(K, device=emissions.device).expand(B, K)  # (B, K) back-pointer "stay in tag k"
        score = self.start + emissions[:, 0]  # (B, K) best score of a path ending in each tag
        pointers = []
        for t in range(1, T):
            candidates = score.unsqueeze(2) + self.transitions  # (B, K, 1) + (K, K) -> (B, K from, K to)
            best, best_from = candidates.max(dim=1)  # (B, K), (B, K)
            valid = mask[:, t].unsqueeze(1)  # (B, 1)
            score = torch.where(valid, best + emissions[:, t], score)  # (B, K)
            # A padded step points each tag back to itself, so backtracking from step T-1 passes through
            # the padding unchanged and reaches each sequence's own last step with its best final tag.
            pointers.append(torch.where(valid, best_from, keep))  # (B, K)
        tag = (score + self.end).argmax(dim=1)  # (B,) best final tag
        path = [tag]
        for best_from in reversed(pointers):
            tag = best_from.gather(1, tag.unsqueeze(1)).squeeze(1)  # (B,)
            path.append(tag)
        paths = torch.stack(path[::-1], dim=1).tolist()  # (B, T) as lists
        lengths = mask.sum(dim=1).tolist()  # (B,)
        return [p[:n] for p, n in zip(paths, lengths, strict=True)]

    def _path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """s(x, y) of the given tags: (B, T, K), (B, T), (B, T) -> (B,)."""
        tags = tags.masked_fill(~mask, 0)  # (B, T) padding may hold e.g. -100; any real tag will do
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1) A[y_{t-1}, y_t]
        score = torch.where(mask, emitted, 0.0).sum(dim=1)  # (B,)
        score = score + torch.where(mask[:, 1:], moved, 0.0).sum(dim=1)  # (B,)
        last = mask.sum(dim=1) - 1  # (B,) index of the last valid step
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)  # (B,)
        return score + self.start[tags[:, 0]] + self.end[last_tags]  # (B,)

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z(x) by the forward algorithm: (B, T, K), (B, T) -> (B,)."""
        alpha = self.start + emissions[:, 0]  # (B, K) log-sum of the scores of all paths ending in each tag
        for t in range(1, emissions.shape[1]):
            scores = alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)  # (B, K from, K to)
            alpha = torch.where(mask[:, t].unsqueeze(1), torch.logsumexp(scores, dim=1), alpha)  # (B, K)
        return torch.logsumexp(alpha + self.end, dim=1)  # (B,)

    def _prepare(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Fail early on mismatched shapes or a mask that is not a prefix mask; -> (emissions, mask (B, T) bool)
        with the padded emissions zeroed."""
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags or emissions.shape[1] < 1:
            raise ValueError(f"emissions must be (B, T>=1, num_tags={self.num_tags}), got {tuple(emissions.shape)}")
        if tags is not None and tags.shape != emissions.shape[:2]:
            raise ValueError(f"tags must be (B, T) = {tuple(emissions.shape[:2])}, got {tuple(tags.shape)}")
        if mask is None:
            return emissions, torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)  # (B, T)
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask must be (B, T) = {tuple(emissions.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.bool()
        if not bool(mask[:, 0].all() & (mask[:, 1:] <= mask[:, :-1]).all()):
            raise ValueError("mask must be a prefix mask (valid steps first) with the first step valid")
        # The recursions skip padded steps with torch.where, but an inf or nan there would still turn the
        # gradients into nan (the skipped branch's backward multiplies 0 by it), so zero them first.
        return emissions.masked_fill(~mask.unsqueeze(2), 0.0), mask
