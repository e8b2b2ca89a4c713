"""Translation: many-to-many encoder-decoder with attention, trained by teacher forcing.

source tokens -> embedding -> encoder (any registered RNN, packed) -> memory + final state
target tokens -> decoder head (attention over memory) -> next-token logits -> label-smoothed CE

Validation decodes greedily and scores sacreBLEU on detokenised output against the raw
references; val/bleu selects the checkpoint. Test decodes with the run's `decoding` strategy
(beam search by default) and reports test/bleu and test/chrf with sacreBLEU's signatures.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.data.translation import TranslationBatch
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.greedy import Greedy
from seqtasks.errors import ConfigError
from seqtasks.heads.decoder import RecurrentDecoder
from seqtasks.metrics import corpus_scores, loss_scores
from seqtasks.registry import DECODING, TASKS
from seqtasks.tasks.base import PredictOptions, SeqTask
from seqtasks.tensors import lengths_mask
from seqtasks.validation import PositiveFloat, PositiveInt, Rate

log = logging.getLogger(__name__)

Hypotheses = list[tuple[str, float]]  # one sentence's detokenised hypotheses, best first, with scores


@TASKS.register("translation")
class TranslationTask(SeqTask):
    """Encoder-decoder translation (sentencepiece, attention, beam search), selected by validation BLEU."""

    monitor = ("val/bleu", "max")
    headline = ("bleu", "chrf")
    head_sort = RecurrentDecoder

    def __init__(
        self,
        encoder: dict,
        head: dict,
        decoding: dict,
        embedding_dim: PositiveInt = 256,
        dropout: Rate = 0.25,
        label_smoothing: Rate = 0.1,
        max_length: PositiveInt = 100,
        max_length_ratio: PositiveFloat = 1.5,
        **shared: Any,
    ):
        super().__init__(**shared)
        self.source_tokenizer = self.tokenizers["source"]
        self.target_tokenizer = self.tokenizers["target"]
        target = self.target_tokenizer.vocab
        if None in (target.pad_id, target.bos_id, target.eos_id):
            raise ConfigError("the target tokenizer needs <pad>, <bos> and <eos> tokens")
        self.pad_id, self.bos_id, self.eos_id = target.pad_id, target.bos_id, target.eos_id
        self.label_smoothing = label_smoothing
        self.max_length = max_length
        self.max_length_ratio = max_length_ratio
        self.strategy: DecodingStrategy = DECODING.build(decoding, "decoding")
        self.embedding = nn.Embedding(
            len(self.source_tokenizer), embedding_dim, padding_idx=self.source_tokenizer.vocab.pad_id
        )
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(encoder, input_size=embedding_dim)
        self.decoder = self.build_head(
            head, input_size=self.encoder.output_size, vocab_size=len(self.target_tokenizer), pad_id=self.pad_id
        )

    # --- model -------------------------------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> dict[str, Any]:
        """source (B, S), lengths (B,) -> the decoder's initial state (memory, mask, RNN state)."""
        memory, final = self.encoder(self.dropout(self.embedding(source)), lengths)  # (B, S, He)
        mask = lengths_mask(lengths.to(source.device), source.shape[1])  # (B, S)
        return self.decoder.initial_state(memory, mask, self.encoder.summary(final))

    def forward(self, source: Tensor, lengths: Tensor, target_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: -> logits (B, T, V), attention weights (B, T, S) or None."""
        return self.decoder(target_in, self.encode(source, lengths))

    def token_nll(self, batch: TranslationBatch, smoothing: float = 0.0) -> Tensor:
        """Cross-entropy of every target token (B, T), 0 at padding."""
        logits, _ = self(batch.source, batch.source_lengths, batch.target_in)  # (B, T, V)
        nll = F.cross_entropy(
            logits.flatten(0, 1).float(),
            batch.target_out.flatten(),
            ignore_index=self.pad_id,
            label_smoothing=smoothing,
            reduction="none",
        )
        return nll.view_as(batch.target_out)

    def training_loss(self, batch: TranslationBatch) -> Tensor:
        return self.token_nll(batch, self.label_smoothing).sum() / batch.num_tokens

    def evaluate(self, batch: TranslationBatch, stage: str) -> dict[int, tuple[str, str, float, int]]:
        """index -> (hypothesis, reference, summed NLL, target tokens); the val/test loss is the
        plain NLL (no smoothing). Validation decodes greedily (fast), test with the run's strategy."""
        nll = self.token_nll(batch).sum(1).tolist()  # (B,)
        tokens = (batch.target_out != self.pad_id).sum(1).tolist()
        strategy = Greedy() if stage == "val" else self.strategy
        hypotheses = [best[0][0] for best in self.decode_batch(batch.source, batch.source_lengths, strategy)]
        rows = zip(hypotheses, batch.references, nll, tokens, strict=True)
        return dict(zip(batch.indices, rows, strict=True))

    def score(self, records: list[tuple[str, str, float, int]], stage: str) -> dict[str, float]:
        hypotheses, references, nll, tokens = zip(*records, strict=True)
        scores, signatures = corpus_scores(hypotheses, references)
        self.report.update({f"{stage}/{k}_signature": v for k, v in signatures.items()})
        rank_zero_info(f"{stage} BLEU {scores['bleu']:.2f} chrF {scores['chrf']:.2f} ({signatures['bleu']})")
        return {**scores, **loss_scores(sum(nll), sum(tokens))}

    # --- decoding ----------------------------------------------------------------------------------
    def decode_batch(
        self, source: Tensor, lengths: Tensor, strategy: DecodingStrategy, n: int | None = None
    ) -> list[Hypotheses]:
        """source (B, S), lengths (B,) -> per sentence its n (default: the strategy's n_best)
        detokenised hypotheses, best first, with their scores."""
        state = self.encode(source, lengths)
        max_len = (lengths.float() * self.max_length_ratio).ceil().long() + 10  # (B,)
        first = torch.full_like(lengths, self.bos_id)
        tokens, scores = strategy.search(self.decoder.step, state, first, max_len, eos_id=self.eos_id, n=n)
        detokenise = self.target_tokenizer.decode
        return [
            [(detokenise(self.until_eos(ids)), score) for ids, score in zip(row, row_scores, strict=True)]
            for row, row_scores in zip(tokens.tolist(), scores.tolist(), strict=True)
        ]  # tokens: (B, N, T)

    def until_eos(self, ids: list[int]) -> list[int]:
        return ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids

    def encode_sources(self, sources: list[str]) -> list[list[int]]:
        """Token ids of each source, truncated to max_length with a counted warning."""
        encoded = [self.source_tokenizer.encode(s) for s in sources]
        truncated = sum(len(ids) > self.max_length for ids in encoded)
        if truncated:
            log.warning(
                "truncated %d of %d source sentences to task.max_length=%d tokens",
                truncated,
                len(sources),
                self.max_length,
            )
        return [ids[: self.max_length] for ids in encoded]

    def translate(
        self, sources: list[str], strategy: DecodingStrategy | None = None, batch_size: int = 64
    ) -> list[str]:
        """Translate raw sentences (best hypothesis each); an empty line translates to ''."""
        return [best[0][0] for best in self.translate_n_best(sources, strategy, batch_size, n=1)]

    def translate_n_best(
        self, sources: list[str], strategy: DecodingStrategy | None = None, batch_size: int = 64, n: int | None = None
    ) -> list[Hypotheses]:
        """Per sentence, its hypotheses best first with scores (see decode_batch), batched by
        similar length; an empty line gives [('', 0.0)]. Default strategy: the run's (task.decoding)."""
        strategy = self.strategy_or_default(strategy)
        with self.inference():
            encoded = self.encode_sources(sources)
            results: list[Hypotheses] = [[("", 0.0)] for _ in sources]
            for rows in length_sorted_chunks(encoded, batch_size):
                source, lengths = self.pad([encoded[i] for i in rows])
                for i, hypotheses in zip(rows, self.decode_batch(source, lengths, strategy, n), strict=True):
                    results[i] = hypotheses
            return results

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """One translation per line (an empty line gives an empty line); with n_best N > 1, Moses
        n-best lines instead: `line ||| hypothesis ||| score`, N per input line, best first."""
        lines = self.require_input(lines, "translates lines")
        strategy = self.strategy_or_default(options.strategy)
        n_best = self.translate_n_best(lines, strategy, options.batch_size)
        if strategy.n_best == 1:
            return [hypotheses[0][0] for hypotheses in n_best]
        return [f"{i} ||| {text} ||| {score:.4f}" for i, hypotheses in enumerate(n_best) for text, score in hypotheses]

    def pad(self, sequences: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Source token id lists -> padded (B, S) on this task's device, lengths (B,)."""
        return pad_sequences(sequences, self.source_tokenizer.vocab.pad_id, self.device)

    def attention_map(self, source: str) -> tuple[list[str], list[str], Tensor]:
        """Greedy translation of `source` with its attention: source pieces (S), output pieces
        (T, ending in <eos>), weights (T, S)."""
        with self.inference():
            ids = self.encode_sources([source])[0] or [self.source_tokenizer.vocab.unk_id]
            src, lengths = self.pad([ids])
            hypothesis = self.until_eos(
                Greedy()
                .decode(
                    self.decoder.step,
                    self.encode(src, lengths),
                    torch.full_like(lengths, self.bos_id),
                    self.max_length,
                    eos_id=self.eos_id,
                )[0]
                .tolist()
            )
            target_in = torch.tensor([[self.bos_id, *hypothesis]], device=self.device)
            _, weights = self(src, lengths, target_in)  # teacher forcing replays the same decisions
        if weights is None:
            raise ConfigError("this model has no attention (head.attention=null)")
        source_pieces = [self.source_tokenizer.vocab.tokens[i] for i in ids]
        output_pieces = [self.target_tokenizer.vocab.tokens[i] for i in [*hypothesis, self.eos_id]]
        return source_pieces, output_pieces, weights[0].float().cpu()
