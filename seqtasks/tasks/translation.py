"""Translation: many-to-many encoder-decoder with attention, trained by teacher forcing.

source tokens -> embedding -> encoder (any registered RNN, packed) -> memory + final state
target tokens -> decoder head (attention over memory) -> next-token logits -> label-smoothed CE

Validation decodes greedily and scores sacreBLEU on detokenised output against the raw
references; val/bleu selects the checkpoint. Test decodes with the run's `decoding` strategy
(beam search by default) and reports test/bleu and test/chrf with sacreBLEU's signatures.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.beam import BeamSearch
from seqtasks.decoding.greedy import Greedy
from seqtasks.errors import ConfigError
from seqtasks.metrics import TranslationScores, gather_from_ranks
from seqtasks.registry import DECODING, ENCODERS, HEADS, TASKS
from seqtasks.tasks.base import SeqTask
from seqtasks.tokenizers.base import Tokenizer

log = logging.getLogger(__name__)


@TASKS.register("translation")
class TranslationTask(SeqTask):
    """Encoder-decoder translation (sentencepiece, attention, beam search), selected by validation BLEU."""

    monitor = ("val/bleu", "max")

    def __init__(
        self,
        tokenizers: dict[str, dict],
        encoder: dict,
        head: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        decoding: dict | None = None,
        embedding_dim: int = 256,
        dropout: float = 0.2,
        label_smoothing: float = 0.1,
        max_length: int = 100,
        max_length_ratio: float = 1.5,
        nonfinite_loss: str = "raise",
        plugins: list[str] | None = None,
    ):
        super().__init__(optimizer, scheduler, nonfinite_loss, plugins)
        # Tokenizer states (sentencepiece models) are large: keep them out of the loggers' hparams.
        self.save_hyperparameters(logger=False)
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.source_tokenizer = Tokenizer.from_state(tokenizers["source"])
        self.target_tokenizer = Tokenizer.from_state(tokenizers["target"])
        self.pad_id = self.target_tokenizer.vocab.pad_id
        self.bos_id = self.target_tokenizer.vocab.bos_id
        self.eos_id = self.target_tokenizer.vocab.eos_id
        if None in (self.pad_id, self.bos_id, self.eos_id):
            raise ConfigError("the target tokenizer needs <pad>, <bos> and <eos> tokens")
        self.label_smoothing = label_smoothing
        self.max_length = max_length
        self.max_length_ratio = max_length_ratio
        self.strategy: DecodingStrategy = DECODING.build(decoding) if decoding else Greedy()
        self.embedding = nn.Embedding(len(self.source_tokenizer), embedding_dim,
                                      padding_idx=self.source_tokenizer.vocab.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.encoder = ENCODERS.build(encoder, input_size=embedding_dim)
        self.decoder = HEADS.build(head, input_size=self.encoder.output_size,
                                   vocab_size=len(self.target_tokenizer), pad_id=self.pad_id)
        self._scores: dict[str, TranslationScores] = {}

    # --- model -------------------------------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> dict[str, Any]:
        """source (B, S), lengths (B,) -> the decoder's initial state (memory, mask, RNN state)."""
        memory, final = self.encoder(self.dropout(self.embedding(source)), lengths)  # (B, S, He)
        mask = torch.arange(source.shape[1], device=source.device)[None, :] < lengths[:, None]  # (B, S)
        return self.decoder.initial_state(memory, mask, self.encoder.summary(final))

    def forward(self, source: Tensor, lengths: Tensor, target_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: -> logits (B, T, V), attention weights (B, T, S) or None."""
        return self.decoder(target_in, self.encode(source, lengths))

    def step(self, batch, stage: str) -> Tensor:
        logits, _ = self(batch.source, batch.source_lengths, batch.target_in)  # (B, T, V)
        smoothing = self.label_smoothing if stage == "train" else 0.0  # val/test loss: the true NLL
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.target_out.flatten(),
                               ignore_index=self.pad_id, label_smoothing=smoothing)
        if stage == "train":
            self.log("train/loss", loss, prog_bar=True)
            return loss
        tokens = int((batch.target_out != self.pad_id).sum())
        strategy = Greedy() if stage == "val" else self.strategy  # greedy keeps validation fast
        hypotheses = [best[0][0] for best in self.decode_batch(batch.source, batch.source_lengths, strategy)]
        self._scores[stage].add(batch.indices, hypotheses, batch.references, loss.item() * tokens, tokens)
        return loss

    def batch_size_and_tokens(self, batch) -> tuple[int, int]:
        return len(batch), int((batch.target_out != self.pad_id).sum())  # sentences, target tokens

    # --- decoding ----------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_batch(self, source: Tensor, lengths: Tensor,
                     strategy: DecodingStrategy) -> list[list[tuple[str, float | None]]]:
        """source (B, S), lengths (B,) -> per sentence its detokenised hypotheses, best first, with
        their scores: beam search's n_best (scored), or the one hypothesis of other strategies (None)."""
        state = self.encode(source, lengths)
        max_len = (lengths.float() * self.max_length_ratio).ceil().long() + 10  # (B,)
        first = torch.full_like(lengths, self.bos_id)
        if isinstance(strategy, BeamSearch):
            tokens, scores = strategy.search(self.decoder.step, state, first, max_len, eos_id=self.eos_id)
            scores = scores.tolist()  # (B, N)
        else:
            tokens = strategy.decode(self.decoder.step, state, first, max_len, eos_id=self.eos_id)[:, None]
            scores = [[None]] * len(tokens)
        detokenise = self.target_tokenizer.decode
        return [[(detokenise(self.until_eos(ids)), score) for ids, score in zip(row, row_scores, strict=True)]
                for row, row_scores in zip(tokens.tolist(), scores, strict=True)]  # tokens: (B, N, T)

    def until_eos(self, ids: list[int]) -> list[int]:
        return ids[:ids.index(self.eos_id)] if self.eos_id in ids else ids

    def encode_sources(self, sources: list[str]) -> list[list[int]]:
        """Token ids of each source, truncated to max_length with a counted warning."""
        encoded = [self.source_tokenizer.encode(s) for s in sources]
        truncated = sum(len(ids) > self.max_length for ids in encoded)
        if truncated:
            log.warning("truncated %d of %d source sentences to task.max_length=%d tokens",
                        truncated, len(sources), self.max_length)
        return [ids[:self.max_length] for ids in encoded]

    def translate(self, sources: list[str], strategy: DecodingStrategy | None = None,
                  batch_size: int = 64) -> list[str]:
        """Translate raw sentences (best hypothesis each); an empty line translates to ''."""
        return [best[0][0] for best in self.translate_n_best(sources, strategy, batch_size)]

    @torch.no_grad()
    def translate_n_best(self, sources: list[str], strategy: DecodingStrategy | None = None,
                         batch_size: int = 64) -> list[list[tuple[str, float | None]]]:
        """Per sentence, its hypotheses best first with scores (see decode_batch), batched by
        similar length; an empty line gives [('', None)]. Default strategy: the run's (task.decoding)."""
        strategy = strategy or self.strategy
        was_training = self.training
        self.eval()
        try:
            encoded = self.encode_sources(sources)
            results: list[list[tuple[str, float | None]]] = [[("", None)] for _ in sources]
            for rows in length_sorted_chunks(encoded, batch_size):
                source, lengths = self.pad([encoded[i] for i in rows])
                for i, hypotheses in zip(rows, self.decode_batch(source, lengths, strategy), strict=True):
                    results[i] = hypotheses
            return results
        finally:
            self.train(was_training)

    def pad(self, sequences: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Source token id lists -> padded (B, S) on this task's device, lengths (B,)."""
        return pad_sequences(sequences, self.source_tokenizer.vocab.pad_id, self.device)

    @torch.no_grad()
    def attention_map(self, source: str) -> tuple[list[str], list[str], Tensor]:
        """Greedy translation of `source` with its attention: source pieces (S), output pieces
        (T, ending in <eos>), weights (T, S)."""
        ids = self.encode_sources([source])[0]
        src, lengths = self.pad([ids])
        hypothesis = self.until_eos(Greedy().decode(
            self.decoder.step, self.encode(src, lengths), torch.full_like(lengths, self.bos_id),
            self.max_length, eos_id=self.eos_id)[0].tolist())
        target_in = torch.tensor([[self.bos_id, *hypothesis]], device=self.device)
        _, weights = self(src, lengths, target_in)  # teacher forcing replays the same decisions
        if weights is None:
            raise ConfigError("this model has no attention (head.attention=null)")
        source_pieces = [self.source_tokenizer.vocab.tokens[i] for i in ids]
        output_pieces = [self.target_tokenizer.vocab.tokens[i] for i in [*hypothesis, self.eos_id]]
        return source_pieces, output_pieces, weights[0].float().cpu()

    # --- metrics -----------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._scores["val"] = TranslationScores()

    def on_test_epoch_start(self) -> None:
        self._scores["test"] = TranslationScores()

    def on_validation_epoch_end(self) -> None:
        self.log_scores("val")

    def on_test_epoch_end(self) -> None:
        self.log_scores("test")

    def log_scores(self, stage: str) -> None:
        scores = gather_from_ranks(self._scores.pop(stage), self.trainer)
        metrics, signatures = scores.compute()
        loss = metrics.pop("loss")
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, prog_bar=True, sync_dist=False)
        self.log_dict({f"{stage}/loss": loss, f"{stage}/ppl": math.exp(min(loss, 50))}, sync_dist=False)
        self.report.update({f"{stage}/{k}_signature": v for k, v in signatures.items()})
        if stage == "test" or not self.trainer.sanity_checking:
            log.info("%s BLEU %.2f chrF %.2f (%s)", stage, metrics["bleu"], metrics["chrf"], signatures["bleu"])
