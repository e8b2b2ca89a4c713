"""Translation: many-to-many encoder-decoder with attention, trained by teacher forcing (the
decoder, its loss and its search are shared with captioning: `tasks/encoder_decoder.py`).

source tokens -> embedding -> encoder (any registered RNN, packed) -> memory + final state
target tokens -> decoder head (attention over memory) -> next-token logits -> label-smoothed CE

Validation decodes greedily and scores sacreBLEU on detokenised output against the raw
references; val/bleu selects the checkpoint. Test decodes with the run's `decoding` strategy
(beam search by default) and reports test/bleu and test/chrf with sacreBLEU's signatures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import islice
from typing import Any

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor, nn

from seqtasks.analysis.figures import attention_figure
from seqtasks.configuration.registry import TASKS
from seqtasks.configuration.validation import PositiveFloat, PositiveInt, Rate
from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.data.translation import TranslationBatch
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.greedy import Greedy
from seqtasks.decoding.shortlist import Shortlist
from seqtasks.errors import ConfigError
from seqtasks.metrics import corpus_scores, loss_scores
from seqtasks.tasks.base import PredictOptions
from seqtasks.tasks.encoder_decoder import EncoderDecoderTask, Hypotheses
from seqtasks.tensors import lengths_mask

log = logging.getLogger(__name__)

# One sentence's attention: source pieces (S), output pieces (T), weights (T, S), each row summing
# to 1 over the source pieces; see best_attention.
AttentionMap = tuple[list[str], list[str], Tensor]


@TASKS.register("translation")
class TranslationTask(EncoderDecoderTask):
    """Encoder-decoder translation (sentencepiece, attention, beam search), selected by validation BLEU."""

    monitor = ("val/bleu", "max")
    metrics = ("bleu", "chrf", "loss", "ppl")
    headline = ("bleu", "chrf")

    def __init__(
        self,
        encoder: dict,
        head: dict,
        decoding: dict,
        embedding_dim: PositiveInt = 256,
        dropout: Rate = 0.25,
        max_length: PositiveInt = 100,
        max_length_ratio: PositiveFloat = 1.5,
        **shared: Any,
    ):
        super().__init__(decoding=decoding, **shared)  # label_smoothing is the shared base's
        self.source_tokenizer = self.tokenizers["source"]
        self.max_length = max_length
        self.max_length_ratio = max_length_ratio
        self.embedding = nn.Embedding(
            len(self.source_tokenizer), embedding_dim, padding_idx=self.source_tokenizer.vocab.pad_id
        )
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(encoder, input_size=embedding_dim)
        self.decoder = self.build_decoder(head, self.encoder.output_size)
        self.shortlist: Shortlist | None = None  # use_shortlist: search over a shortlist of target tokens

    # --- model -------------------------------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> dict[str, Any]:
        """source (B, S), lengths (B,) -> the decoder's initial state (memory, mask, RNN state)."""
        memory, final = self.encoder(self.dropout(self.embedding(source)), lengths)  # (B, S, He)
        mask = lengths_mask(lengths.to(source.device), source.shape[1])  # (B, S)
        return self.decoder.initial_state(memory, mask, self.encoder.summary(final))

    def forward(self, source: Tensor, lengths: Tensor, target_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: -> logits (B, T, V), attention weights (B, T, S) or None."""
        return self.decoder(target_in, self.encode(source, lengths))

    def batch_nll(self, batch: TranslationBatch, smoothing: float = 0.0) -> Tensor:
        """Cross-entropy of every target token (B, T), 0 at padding."""
        state = self.encode(batch.source, batch.source_lengths)
        return self.token_nll(state, batch.target_in, batch.target_out, smoothing)

    def training_loss(self, batch: TranslationBatch) -> Tensor:
        return self.batch_nll(batch, self.label_smoothing).sum() / batch.num_tokens

    def evaluate(self, batch: TranslationBatch, stage: str) -> dict[int, tuple[str, str, float, int]]:
        """index -> (hypothesis, reference, summed NLL, target tokens); the val/test loss is the
        plain NLL (no smoothing). Decoded as stage_strategy says: validation greedily (fast) unless
        task.val_decoding=test, test with the run's strategy."""
        nll = self.batch_nll(batch).sum(1).tolist()  # (B,)
        tokens = (batch.target_out != self.pad_id).sum(1).tolist()
        strategy = self.stage_strategy(stage)
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
    def search(
        self, source: Tensor, lengths: Tensor, strategy: DecodingStrategy, n: int | None = None
    ) -> tuple[dict[str, Any], Tensor, Tensor, Tensor]:
        """source (B, S), lengths (B,) -> the decoder's initial state, token ids (B, N, T) and scores
        (B, N) of n (default: the strategy's n_best) hypotheses per sentence, best first, and each
        sentence's length limit (B,)."""
        state = self.encode(source, lengths)
        max_len = (lengths.float() * self.max_length_ratio).ceil().long() + 10  # (B,)
        vocabulary = None if self.shortlist is None else self.shortlist.vocabulary(source, lengths)  # (V',)
        tokens, scores = self.search_from(state, max_len, strategy, n, vocabulary)
        return state, tokens, scores, max_len

    def use_shortlist(self, pairs: Iterable[tuple[str, str]], per_source: int = 20, frequent: int = 500) -> None:
        """Restrict search to a vocabulary shortlist learned from (source, target) sentence pairs,
        the run's training data (seqtasks/decoding/shortlist.py)."""
        target = self.target_tokenizer.vocab
        self.shortlist = Shortlist.learn(
            ((self.source_tokenizer.encode(s), self.target_tokenizer.encode(t)) for s, t in pairs),
            len(self.source_tokenizer),
            len(self.target_tokenizer),
            specials=[i for i in (target.bos_id, target.eos_id, target.unk_id) if i is not None],
            per_source=per_source,
            frequent=frequent,
        )

    def decode_batch(
        self, source: Tensor, lengths: Tensor, strategy: DecodingStrategy, n: int | None = None
    ) -> list[Hypotheses]:
        """source (B, S), lengths (B,) -> per sentence its n (default: the strategy's n_best)
        detokenised hypotheses, best first, with their scores."""
        _, tokens, scores, _ = self.search(source, lengths, strategy, n)
        return self.detokenise(tokens, scores)

    def best_attention(
        self, state: dict[str, Any], source: Tensor, lengths: Tensor, best: Tensor, max_len: Tensor
    ) -> list[AttentionMap]:
        """The attention of each sentence's chosen hypothesis (see replay_attention): state (the
        decoder's initial state for source (B, S), lengths (B,)), best (B, T) the hypotheses' ids,
        max_len (B,) their length limits -> per sentence (source pieces, output pieces, weights
        (T_i, S_i)). Rows: one per output piece (and <eos> when the decoder chose to stop).
        Columns: the source pieces the encoder saw (the source has no <bos>/<eos>), no padding:
        the attention gives padding zero weight, so each row sums to 1 over these columns."""
        outputs, weights = self.replay_attention(state, best, max_len)  # weights (B, T', S)
        source_tokens, target_tokens = self.source_tokenizer.vocab.tokens, self.target_tokenizer.vocab.tokens
        return [
            (
                [source_tokens[i] for i in source[b, :length].tolist()],
                [target_tokens[i] for i in ids],
                weights[b, : len(ids), :length],  # (T_i, S_i): this sentence's rows and columns
            )
            for b, (ids, length) in enumerate(zip(outputs, lengths.tolist(), strict=True))
        ]

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
        with self.inference():
            return self.translate_encoded(self.encode_sources(sources), strategy, batch_size, n)[0]

    def translate_with_attention(
        self, sources: list[str], strategy: DecodingStrategy | None = None, batch_size: int = 64, n: int | None = None
    ) -> tuple[list[Hypotheses], list[AttentionMap]]:
        """translate_n_best, and the attention of each sentence's best hypothesis (the first of its
        n-best list; see best_attention), computed batch by batch with the translations. An empty
        line (or one that encodes to no token) gives ([], [], a (0, 0) tensor)."""
        if self.decoder.attention is None:
            raise ConfigError(f"task '{self.registered_name}': this model has no attention (head.attention=null)")
        with self.inference():
            return self.translate_encoded(self.encode_sources(sources), strategy, batch_size, n, attention=True)

    def translate_encoded(
        self,
        encoded: list[list[int]],
        strategy: DecodingStrategy | None,
        batch_size: int,
        n: int | None,
        attention: bool = False,
    ) -> tuple[list[Hypotheses], list[AttentionMap]]:
        """Source id lists -> per sentence its hypotheses and, with attention, its best one's
        attention ([] without); batches of similar length, results put back in input order."""
        strategy = self.strategy_or_default(strategy)
        results: list[Hypotheses] = [[("", 0.0)] for _ in encoded]
        maps: list[AttentionMap] = [([], [], torch.zeros(0, 0)) for _ in encoded] if attention else []
        for rows in length_sorted_chunks(encoded, batch_size):
            source, lengths = self.pad([encoded[i] for i in rows])  # (B, S), (B,)
            state, tokens, scores, max_len = self.search(source, lengths, strategy, n)  # tokens (B, N, T)
            for i, hypotheses in zip(rows, self.detokenise(tokens, scores), strict=True):
                results[i] = hypotheses
            if attention:
                batch_maps = self.best_attention(state, source, lengths, tokens[:, 0], max_len)  # best: (B, T)
                for i, attention_map in zip(rows, batch_maps, strict=True):
                    maps[i] = attention_map
        return results, maps

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """One translation per line (an empty line gives an empty line); with n_best N > 1, Moses
        n-best lines instead: `line ||| hypothesis ||| score`, N per input line, best first."""
        lines = self.require_input(lines, "translates lines")
        strategy = self.strategy_or_default(options.strategy)
        return self.output_lines(self.translate_n_best(lines, strategy, options.batch_size), strategy)

    def predict_attention(
        self, lines: list[str] | None, options: PredictOptions
    ) -> tuple[list[str], list[AttentionMap]]:
        """predict_lines' output, and per input line the attention of its best translation (with
        n_best N > 1 too: the first of its N). `seqtasks.predict attention=...` writes them."""
        lines = self.require_input(lines, "translates lines")
        strategy = self.strategy_or_default(options.strategy)
        n_best, maps = self.translate_with_attention(lines, strategy, options.batch_size)
        return self.output_lines(n_best, strategy), maps

    def pad(self, sequences: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Source token id lists -> padded (B, S) on this task's device, lengths (B,)."""
        return pad_sequences(sequences, self.source_tokenizer.vocab.pad_id, self.device)

    def attention_map(self, source: str) -> AttentionMap:
        """Greedy translation of `source` with its attention (see best_attention): source pieces
        (S), output pieces (T, ending in <eos> when the decoder stopped), weights (T, S). An empty
        source is read as one <unk>, so that a figure can still be drawn."""
        if self.decoder.attention is None:
            raise ConfigError("this model has no attention (head.attention=null)")
        with self.inference():
            ids = self.encode_sources([source])[0] or [self.source_tokenizer.vocab.unk_id]
            return self.translate_encoded([ids], Greedy(), 1, 1, attention=True)[1][0]

    def attention_figures(self, data: Any, count: int) -> dict[str, Figure]:
        """Heatmaps of the first `count` validation sentences: the same ones every time, so images
        compare (what the AttentionImages callback draws at every validation); none without attention."""
        if self.decoder.attention is None:
            return {}
        sources = [source for source, _ in islice(data.usable("val"), count)]
        return {f"sentence_{i}": attention_figure(*self.attention_map(source)) for i, source in enumerate(sources)}
