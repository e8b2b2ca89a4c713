"""Beam search: the K best partial hypotheses of every row, all rows and beams as one batch.

Row b's beams are rows b*K .. b*K+K-1 of a (B*K, ...) batch, so one step call advances every
hypothesis of every sentence; the only Python loop is over time steps. The state follows the
contract of `base.py` (batch on dim 0): `repeat_state` makes K copies per row, `select_state`
reorders them to the surviving beams after every step. The state's PER_INPUT entries (an attention
decoder's encoder memory) stay one row per sentence: they are not copied K times, nor reordered.
A sentence whose K hypotheses have all finished leaves the batch in that same reordering, so later
steps compute only live sentences.

Hypotheses compete inside the beam on their raw sums of log-probs. A hypothesis that emitted eos
keeps competing with its score frozen (only eos follows it, at log-prob 0), so it is dropped only
when K hypotheses with a higher raw score exist. The finished beam is ranked by the GNMT length
normalisation lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016): score = sum of log-probs / lp,
|Y| counting the tokens up to and including eos; alpha = 0 ranks by the raw sum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqtasks.configuration.registry import DECODING
from seqtasks.configuration.validation import NonNegativeFloat, PositiveInt
from seqtasks.decoding.base import DecodingStrategy, StepFunction, eos_filled, row_limits
from seqtasks.decoding.candidates import best_extensions
from seqtasks.errors import ConfigError
from seqtasks.tensors import repeat_state, select_state


@DECODING.register("beam")
class BeamSearch(DecodingStrategy):
    """Beam search over the K best hypotheses, ranked with GNMT length normalisation."""

    draws_at_random = False

    def __init__(self, beam_size: PositiveInt = 5, length_penalty: NonNegativeFloat = 1.0, n_best: PositiveInt = 1):
        super().__init__(n_best)
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.check_n(n_best)

    def check_n(self, n: int) -> None:
        if n > self.beam_size:
            raise ConfigError(
                f"beam search returns at most beam_size={self.beam_size} hypotheses per row; asked "
                f"for {n} (decoding.n_best or num_samples): raise decoding.beam_size"
            )

    def length_normaliser(self, lengths: Tensor) -> Tensor:
        """GNMT's lp(Y) = ((5 + |Y|) / 6) ** alpha, elementwise over lengths."""
        return ((5.0 + lengths.float()) / 6.0) ** self.length_penalty

    def search(
        self,
        step: StepFunction,
        state,
        first_tokens: Tensor,
        max_len: int | Tensor,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
        n: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """-> tokens (B, N, T), scores (B, N): each row's N = n (default n_best) best hypotheses,
        best first, scored sum of log-probs / lp(length). After a hypothesis's eos (or its row's
        limit) it holds eos_id. T is the number of steps taken: at most max_len (or its largest
        row). Beam search is deterministic: generator is unused."""
        n = n or self.n_best
        self.check_n(n)
        steps, limits = row_limits(max_len, eos_id)
        batch, beams, device = first_tokens.shape[0], self.beam_size, first_tokens.device
        state = repeat_state(state, beams, per_input=False)  # dim 0: B -> B*K, PER_INPUT entries stay B
        tokens = first_tokens.repeat_interleave(beams)  # (B*K,)
        # The K beams start as the same empty hypothesis: if all of them expanded at the first step,
        # the top K would be K copies of the best token. -inf lets only beam 0 expand.
        scores = torch.full((batch, beams), float("-inf"), device=device)  # (B, K)
        scores[:, 0] = 0.0
        lengths = torch.zeros((batch, beams), dtype=torch.long, device=device)  # tokens up to eos
        finished = torch.zeros((batch, beams), dtype=torch.bool, device=device)
        if limits is not None:
            limits = limits.to(device)[:, None]  # (B, 1)
            finished |= limits <= 0
        hypotheses = first_tokens.new_empty((batch, beams, 0))  # (L, K, t) of the live sentences
        # The results, full-size: each live sentence's rows are rewritten after every step, so a
        # sentence's last write stands once it leaves, padded with eos.
        out = eos_filled(first_tokens, (batch, beams, steps), eos_id)  # (B, K, most steps)
        normalised = scores / self.length_normaliser(lengths)  # (B, K)
        live = torch.arange(batch, device=device)  # (L,): the sentences still searched, in order
        for t in range(steps):
            if bool(finished.all()):
                break
            log_probs, state = step(tokens, state)  # (L*K, V)
            vocab = log_probs.shape[-1]
            log_probs = log_probs.float().view(-1, beams, vocab)  # (L, K, V)
            if eos_id is not None:
                # A finished hypothesis may only go on with eos at log-prob 0: its score is frozen and
                # it keeps its place among the K as long as its raw score earns one.
                # Written into the finished rows alone: a where() over all (L, K, V) cost 5% of a step.
                if bool(finished.any()):
                    only_eos = torch.full((vocab,), float("-inf"), device=device)
                    only_eos[eos_id] = 0.0
                    log_probs[finished] = only_eos
            scores, chosen = best_extensions(scores, log_probs, beams)  # (L, K) each, best first, of K*V
            parent, token = chosen // vocab, chosen % vocab  # (L, K): beam it extends, token it adds
            history = hypotheses.gather(1, parent[..., None].expand(-1, -1, t))  # (L, K, t)
            hypotheses = torch.cat([history, token[..., None]], dim=2)  # (L, K, t+1)
            finished = finished.gather(1, parent)
            lengths = lengths.gather(1, parent) + (~finished).long()  # eos counts, the padding after it not
            if eos_id is not None:
                finished |= token == eos_id
            if limits is not None:
                finished |= limits <= t + 1  # that was the row's last allowed token
            out[live, :, : t + 1] = hypotheses
            normalised[live] = scores / self.length_normaliser(lengths)
            # A sentence with K finished hypotheses would from now on only append eos at log-prob 0 to
            # each, in the same order (topk could swap two with exactly equal scores): its results
            # stand, and it leaves. That costs no extra copy: the state is reordered after every step
            # anyway, and now for fewer rows.
            stay = (~finished.all(dim=1)).nonzero().squeeze(1)  # (L',)
            live, scores, lengths = live[stay], scores[stay], lengths[stay]
            finished, hypotheses = finished[stay], hypotheses[stay]
            if limits is not None:
                limits = limits[stay]
            rows = (stay[:, None] * beams + parent[stay]).view(-1)  # (L'*K,): the new beam order
            # (L'*K, ...); PER_INPUT entries (L', ...), copied only on the steps a sentence leaves
            state = select_state(state, rows, inputs=stay, per_input=len(stay) < len(parent))
            tokens = token[stay].view(-1)  # (L'*K,)
        normalised, order = normalised.sort(dim=-1, descending=True)
        best = order[:, :n]  # (B, N)
        out = out[..., : hypotheses.shape[2]]  # (B, K, T): T steps taken
        return out.gather(1, best[..., None].expand(-1, -1, out.shape[2])), normalised[:, :n]  # (B, N, T)
