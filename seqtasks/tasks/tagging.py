"""Sequence tagging, many-to-many synced: one tag per word (part of speech: UD UPOS or XPOS).

    word -> word embedding (word dropout: <unk> with probability p in training)
         ⊕ character BiLSTM over the word's characters (final states of both directions)
         -> dropout -> encoder (any registered RNN, bidirectional via config) -> tagging head

The character BiLSTM runs once per batch over the batch's distinct forms (one packed nn.LSTM
call), so words never seen in training still get a representation from their spelling; word
dropout makes the model learn to use it (Plank et al. 2016; Lample et al. 2016).

Validation and test collect every word's (gold, predicted, unseen) triple by sentence index,
gathered over DDP ranks (sentences that DDP's padding repeats count once), and report the token
accuracy `acc` (it selects the checkpoint), `acc_unseen` (words out of the training vocabulary)
and per-tag accuracy `acc/<TAG>` (recall of that gold tag).
"""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqtasks.configuration.registry import TASKS
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Rate
from seqtasks.data.batching import length_sorted_chunks
from seqtasks.data.conllu import parse_conllu, write_conllu
from seqtasks.data.tagging import CollateSentences, FormTable, TaggingBatch, check_tokenizers
from seqtasks.errors import ConfigError
from seqtasks.heads.tagger import TaggerHead
from seqtasks.metrics import loss_scores, tagging_scores
from seqtasks.regularization import word_dropout
from seqtasks.tasks.base import PredictOptions, SeqTask


class CharEncoder(nn.Module):
    """Characters of each form -> the final states of a 1-layer BiLSTM, both directions concatenated."""

    def __init__(self, num_chars: int, embedding_dim: int, hidden_size: int, pad_id: int):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embedding_dim, padding_idx=pad_id)
        self.rnn = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """chars (U, C) long, lengths (U,) >= 1 -> (U, 2 * hidden_size)."""
        packed = pack_padded_sequence(self.embedding(chars), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.rnn(packed)  # hidden (2, U, H), each form's own last step per direction
        return hidden.transpose(0, 1).reshape(chars.shape[0], -1)  # (U, 2H)


@TASKS.register("tagging")
class TaggingTask(SeqTask):
    """Sequence tagging (one tag per word): word + character-BiLSTM features, RNN encoder, softmax or CRF head."""

    monitor = ("val/acc", "max")
    metrics = ("acc", "acc_unseen", "unseen_rate", "loss", "acc/<tag>")
    headline = ("acc", "acc_unseen")
    head_sort = TaggerHead

    def __init__(
        self,
        encoder: dict,
        head: dict,
        word_embedding_dim: NonNegativeInt = 100,
        char_embedding_dim: PositiveInt = 50,
        char_hidden_size: NonNegativeInt = 100,
        word_dropout: Rate = 0.25,
        dropout: Rate = 0.33,
        tag_column: str = "upos",
        **shared: Any,
    ):
        super().__init__(**shared)
        check_tokenizers(self.tokenizers)
        self.words, self.chars = self.tokenizers["words"], self.tokenizers["chars"]
        self.tags = self.tokenizers["tags"].vocab.tokens
        self.word_dropout = word_dropout
        self.tag_column = tag_column
        if word_embedding_dim > 0:
            self.word_embedding = nn.Embedding(len(self.words), word_embedding_dim, padding_idx=self.words.vocab.pad_id)
        else:
            self.word_embedding = None
        self.char_encoder = (
            CharEncoder(len(self.chars), char_embedding_dim, char_hidden_size, self.chars.vocab.pad_id)
            if char_hidden_size > 0
            else None
        )
        input_size = word_embedding_dim + (self.char_encoder.output_size if self.char_encoder else 0)
        if input_size == 0:
            raise ConfigError(
                "tagging needs word embeddings or character features: set task.word_embedding_dim "
                "or task.char_hidden_size above 0"
            )
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(encoder, input_size=input_size)
        self.head = self.build_head(head, input_size=self.encoder.output_size, num_tags=len(self.tags))

    @classmethod
    def data_inputs(cls, data: Any) -> dict[str, Any]:
        """The CoNLL-U column the tags come from: predict writes CoNLL-U back into it."""
        return {"tag_column": data.column}

    # --- model -----------------------------------------------------------------------------------
    def forward(self, batch: TaggingBatch) -> Tensor:
        """A batch -> encoder states (B, T, H)."""
        parts = []
        if self.word_embedding is not None:
            words = batch.words  # (B, T)
            if self.training:
                words = word_dropout(words, self.word_dropout, self.words.vocab.unk_id, batch.mask)
            parts.append(self.word_embedding(words))  # (B, T, E)
        if self.char_encoder is not None:
            per_form = self.char_encoder(batch.chars, batch.char_lengths)  # (U, 2Hc)
            parts.append(per_form[batch.forms].to(parts[0].dtype if parts else per_form.dtype))  # (B, T, 2Hc)
        states, _ = self.encoder(self.dropout(torch.cat(parts, dim=-1)), batch.lengths)  # (B, T, H)
        return states

    def emissions(self, batch: TaggingBatch) -> Tensor:
        """A batch -> the head's emission scores (B, T, K): what evaluation and prediction score and
        decode (backend=onnxruntime computes them with the tagger graph instead)."""
        return self.head(self(batch))

    def training_loss(self, batch: TaggingBatch) -> Tensor:
        return self.head.loss(self(batch), batch.tags, batch.mask)

    def evaluate(self, batch: TaggingBatch, stage: str) -> dict[int, tuple[Tensor, Tensor, Tensor, float]]:
        """index -> (gold (n,), predicted (n,), unseen (n,), the sentence's share of the batch loss x n)."""
        emissions = self.emissions(batch)  # (B, T, K)
        mask = batch.mask  # (B, T)
        # The head's loss is per word over the batch; each sentence carries its words' part of the sum.
        loss = float(self.head.emission_loss(emissions, batch.tags, mask)) * int(mask.sum())
        predicted = self.head.decode_emissions(emissions, mask).cpu()  # (B, T), -1 at padding
        tags, unseen, lengths = batch.tags.cpu(), batch.unseen.cpu(), batch.lengths.tolist()
        total = sum(lengths)
        return {
            index: (tags[row, :n], predicted[row, :n], unseen[row, :n], loss * n / total)
            for row, (index, n) in enumerate(zip(batch.indices, lengths, strict=True))
        }

    def score(self, records: list[tuple[Tensor, Tensor, Tensor, float]], stage: str) -> dict[str, float]:
        gold, predicted, unseen, loss = zip(*records, strict=True)
        scores = tagging_scores(torch.cat(gold), torch.cat(predicted), torch.cat(unseen), self.tags)
        return {**scores, "loss": loss_scores(sum(loss), sum(len(g) for g in gold))["loss"]}

    # --- prediction ------------------------------------------------------------------------------
    def tag(self, sentences: list[list[str]], batch_size: int = 64) -> list[list[str]]:
        """The tags of each sentence's words (one list per sentence; an empty sentence gets [])."""
        with self.inference():
            table = FormTable(self.words, self.chars)
            encoded = [table.encode(words) if words else None for words in sentences]
            collate = CollateSentences(self.words.vocab.pad_id, self.chars.vocab.pad_id, self.words.vocab.unk_id)
            results: list[list[str]] = [[] for _ in sentences]
            for rows in length_sorted_chunks(sentences, batch_size):
                batch = collate([(i, encoded[i]) for i in rows]).to(self.device)
                predicted = self.head.decode_emissions(self.emissions(batch), batch.mask).tolist()  # (B, T)
                for i, tags, n in zip(rows, predicted, batch.lengths.tolist(), strict=True):
                    results[i] = [self.tags[t] for t in tags[:n]]
            return results

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """CoNLL-U in -> the same CoNLL-U out with the tag column filled (every other column, comment,
        multiword token and empty node kept); one output entry per sentence, each ending in its blank
        line. Plain text in (one whitespace-tokenised sentence per line) -> its tags, space-separated,
        one line per line (an empty line stays empty)."""
        lines = self.require_input(lines, "tags sentences")
        conllu = options.input_format == "conllu" or (
            options.input_format == "auto" and options.source.endswith((".conllu", ".conllu.gz"))
        )
        if not conllu:
            return [" ".join(tags) for tags in self.tag([line.split() for line in lines], options.batch_size)]
        sentences = list(parse_conllu(lines, options.source))
        tags = self.tag([[word.form for word in sentence.words] for sentence in sentences], options.batch_size)
        text = io.StringIO()
        write_conllu(sentences, text, **{self.tag_column: tags})
        return [block + "\n" for block in text.getvalue().split("\n\n")[:-1]]  # each sentence ends in a blank line
