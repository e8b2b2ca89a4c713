"""What the tasks that write a sequence with the RNN decoder share (translation, captioning): an
encoder of their own turns the input into a memory (B, S, He) and the decoder's initial state; the
`RecurrentDecoder` head (`head=attention_decoder|plain_decoder`) is trained by teacher forcing with
label-smoothed cross-entropy and decoded through the `decoding` registry.

A subclass builds its encoder and calls `build_decoder(head, memory_size)`; it turns its inputs
into the decoder's initial state, and this base does the rest on that state: the loss of a
target, n-best search, detokenisation, and the attention replay of a chosen hypothesis.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from seqtasks.configuration.registry import DECODING
from seqtasks.configuration.validation import Rate
from seqtasks.data.batching import pad_sequences
from seqtasks.decoding.base import DecodingStrategy, StepFunction
from seqtasks.decoding.greedy import Greedy
from seqtasks.decoding.hidden_word import HiddenWordStep, checked_bonus
from seqtasks.errors import ConfigError
from seqtasks.heads.decoder import RecurrentDecoder
from seqtasks.tasks.base import SeqTask

Hypotheses = list[tuple[str, float]]  # one input's detokenised hypotheses, best first, with scores


class EncoderDecoderTask(SeqTask):
    """Not registered: the shared part of translation and captioning."""

    head_sort = RecurrentDecoder
    target_side: ClassVar[str] = "target"  # the tokenizer side the decoder writes

    def __init__(
        self,
        decoding: dict,
        label_smoothing: Rate = 0.1,
        hidden_word_bonus: float | None = None,
        val_decoding: Literal["greedy", "test"] = "greedy",
        **shared: Any,
    ):
        super().__init__(**shared)
        self.target_tokenizer = self.tokenizers[self.target_side]
        target = self.target_tokenizer.vocab
        if None in (target.pad_id, target.bos_id, target.eos_id):
            raise ConfigError(f"the {self.target_side} tokenizer needs <pad>, <bos> and <eos> tokens")
        self.pad_id, self.bos_id, self.eos_id = target.pad_id, target.bos_id, target.eos_id
        self.label_smoothing = label_smoothing
        self.hidden_word_bonus = hidden_word_bonus  # checked against the decoder in build_decoder
        self.val_decoding = val_decoding
        self.strategy: DecodingStrategy = DECODING.build(decoding, "decoding")

    def build_decoder(self, head: dict, memory_size: int) -> RecurrentDecoder:
        """The `head` group's decoder over a memory of memory_size-wide vectors."""
        vocab = self.target_tokenizer.vocab
        decoder = self.build_head(
            head, input_size=memory_size, vocab_size=len(self.target_tokenizer), pad_id=self.pad_id, unk_id=vocab.unk_id
        )
        checked_bonus(self.hidden_word_bonus, "task.hidden_word_bonus", decoder.word_dropout)
        return decoder

    # --- training ----------------------------------------------------------------------------------
    def token_nll(self, state: dict[str, Any], target_in: Tensor, target_out: Tensor, smoothing: float = 0.0) -> Tensor:
        """Teacher forcing from the decoder's initial state: target_in (B, T) -> cross-entropy of
        every target_out token (B, T), 0 at padding."""
        logits, _ = self.decoder(target_in, state)  # (B, T, V)
        nll = F.cross_entropy(
            logits.flatten(0, 1).float(),
            target_out.flatten(),
            ignore_index=self.pad_id,
            label_smoothing=smoothing,
            reduction="none",
        )
        return nll.view_as(target_out)

    # --- decoding ----------------------------------------------------------------------------------
    @property
    def base_step(self) -> StepFunction:
        """The decoder's own step (captioning may guide it)."""
        return self.decoder.step

    @property
    def decoding_step(self) -> StepFunction:
        """What the strategies step through: base_step, with a second run on the previous word
        hidden where hidden_word_bonus is set (seqtasks/decoding/hidden_word.py)."""
        if self.hidden_word_bonus is None:
            return self.base_step
        return HiddenWordStep(self.base_step, self.decoder.unk_id, self.bos_id, self.hidden_word_bonus)

    def stage_strategy(self, stage: str) -> DecodingStrategy:
        """How a stage decodes: the test with the run's strategy, validation greedily (fast) unless
        val_decoding=test, which chooses checkpoints by the decoding the test uses."""
        return Greedy() if stage == "val" and self.val_decoding == "greedy" else self.strategy

    def use_hidden_word_bonus(self, bonus: float | None) -> None:
        """Decode with this hidden-word bonus (`hidden_word_bonus=` of predict and evaluate; None: without
        the hidden-word run); the decoder must have learned with word dropout."""
        self.hidden_word_bonus = checked_bonus(bonus, "hidden_word_bonus", self.decoder.word_dropout)

    def search_from(
        self,
        state: dict[str, Any],
        max_len: Tensor,
        strategy: DecodingStrategy,
        n: int | None = None,
        vocabulary: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """From the state decoding_step starts from (the decoder's initial state) and each row's
        length limit max_len (B,) -> token ids (B, N, T) and scores (B, N) of n (default: the
        strategy's n_best) hypotheses, best first. vocabulary: a shortlist (V',) of sorted target
        ids (seqtasks/decoding/shortlist.py) the search is restricted to; None: all of them."""
        if vocabulary is None:
            first = torch.full_like(max_len, self.bos_id)
            return strategy.search(self.decoding_step, state, first, max_len, eos_id=self.eos_id, n=n)
        if self.hidden_word_bonus is not None:
            raise ConfigError(
                "a shortlist and hidden_word_bonus do not combine (the shortlist may lack <unk>): drop one"
            )
        # The search runs over positions in the shortlist; <bos> and <eos> are in every shortlist.
        bos, eos = torch.searchsorted(vocabulary, torch.tensor([self.bos_id, self.eos_id], device=vocabulary.device))
        first = torch.full_like(max_len, int(bos))
        positions, scores = strategy.search(
            self.decoder.step_within(vocabulary), state, first, max_len, eos_id=int(eos), n=n
        )  # (B, N, T)
        return vocabulary[positions], scores

    def detokenise(self, tokens: Tensor, scores: Tensor) -> list[Hypotheses]:
        """tokens (B, N, T), scores (B, N) -> per row its N (text, score), in that order."""
        decode = self.target_tokenizer.decode
        return [
            [(decode(self.until_eos(ids)), score) for ids, score in zip(row, row_scores, strict=True)]
            for row, row_scores in zip(tokens.tolist(), scores.tolist(), strict=True)
        ]

    def until_eos(self, ids: list[int]) -> list[int]:
        return ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids

    def replay_attention(self, state: dict[str, Any], best: Tensor, max_len: Tensor) -> tuple[list[list[int]], Tensor]:
        """The attention of each row's chosen hypothesis best (B, T), from one teacher-forced pass
        from the decoder's initial state -> per row its output ids, and weights (B, T', S) on CPU
        (row b's first len(outputs[b]) rows are its own).

        The strategies do not keep the weights of the steps they take (beam search would have to
        reorder them with its beams at every step), but the decoder is deterministic given its
        inputs, so feeding it <bos> + the hypothesis replays the steps that chose it (up to float
        rounding: one fused RNN call instead of one per step), batched like the search. Outputs:
        the hypothesis, and <eos> when the decoder chose to stop (the step whose attention led to
        stopping); a hypothesis cut by its length limit max_len (B,) has no <eos>."""
        if self.decoder.attention is None:
            raise ConfigError("this model has no attention (head.attention=null)")
        outputs = []
        for ids, limit in zip(best.tolist(), max_len.tolist(), strict=True):
            hypothesis = self.until_eos(ids)
            stopped = len(hypothesis) < limit  # an <eos> at the limit is the strategy's filling
            outputs.append(hypothesis + [self.eos_id] if stopped else hypothesis)
        # Step t reads output t-1 (<bos> first) and its attention chooses output t.
        target_in = pad_sequences([[self.bos_id, *ids[:-1]] for ids in outputs], self.pad_id, self.device)[0]
        _, weights, _ = self.decoder.run(target_in, state)  # (B, T', S), T' the longest output; no output layer
        return outputs, weights.float().cpu()

    @staticmethod
    def output_lines(n_best: list[Hypotheses], strategy: DecodingStrategy) -> list[str]:
        """The best hypothesis per input; with n_best N > 1, Moses n-best lines instead:
        `line ||| hypothesis ||| score`, N per input, best first."""
        if strategy.n_best == 1:
            return [hypotheses[0][0] for hypotheses in n_best]
        return [f"{i} ||| {text} ||| {score:.4f}" for i, hypotheses in enumerate(n_best) for text, score in hypotheses]
