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

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqtasks.data.batching import length_sorted_chunks
from seqtasks.data.tagging import TaggingBatch, check_tokenizers, collate, encode_sentence
from seqtasks.errors import ConfigError
from seqtasks.heads.tagger import TaggerHead
from seqtasks.registry import ENCODERS, HEADS, TASKS
from seqtasks.regularization import word_dropout
from seqtasks.tasks.base import SeqTask
from seqtasks.tokenizers.base import Tokenizer


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

    def __init__(
        self,
        tokenizers: dict[str, dict],
        encoder: dict,
        head: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        word_embedding_dim: int = 100,
        char_embedding_dim: int = 50,
        char_hidden_size: int = 100,
        word_dropout: float = 0.25,
        dropout: float = 0.33,
        nonfinite_loss: str = "raise",
        plugins: list[str] | None = None,
    ):
        super().__init__(optimizer, scheduler, nonfinite_loss, plugins)
        for key, value in {"word_dropout": word_dropout, "dropout": dropout}.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"task.{key} must be in [0, 1), got {value}")
        self.save_hyperparameters(logger=False)
        restored = {side: Tokenizer.from_state(state) for side, state in tokenizers.items()}
        check_tokenizers(restored)
        self.words, self.chars = restored["words"], restored["chars"]
        self.tags = restored["tags"].vocab.tokens
        self.word_dropout = word_dropout
        if word_embedding_dim > 0:
            self.word_embedding = nn.Embedding(len(self.words), word_embedding_dim,
                                               padding_idx=self.words.vocab.pad_id)
        else:
            self.word_embedding = None
        self.char_encoder = (CharEncoder(len(self.chars), char_embedding_dim, char_hidden_size,
                                         self.chars.vocab.pad_id) if char_hidden_size > 0 else None)
        input_size = max(word_embedding_dim, 0) + (self.char_encoder.output_size if self.char_encoder else 0)
        if input_size == 0:
            raise ConfigError("tagging needs word embeddings or character features: set task.word_embedding_dim "
                              "or task.char_hidden_size above 0")
        self.dropout = nn.Dropout(dropout)
        self.encoder = ENCODERS.build(encoder, input_size=input_size)
        if not issubclass(HEADS.get(head.get("name")), TaggerHead):
            raise ConfigError(f"task tagging needs a tagging head (head=softmax_tagger or crf_tagger), "
                              f"got head={head.get('name')}")
        self.head = HEADS.build(head, input_size=self.encoder.output_size, num_tags=len(self.tags))
        self._outputs: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

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

    def step(self, batch: TaggingBatch, stage: str) -> Tensor:
        states = self(batch)
        mask = batch.mask  # (B, T)
        loss = self.head.loss(states, batch.tags, mask)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "train", batch_size=int(mask.sum()),
                 sync_dist=stage != "train")
        if stage != "train":
            predicted = self.head.decode(states, mask).cpu()  # (B, T), -1 at padding
            tags, unseen, lengths = batch.tags.cpu(), batch.unseen.cpu(), batch.lengths.tolist()
            for row, (index, n) in enumerate(zip(batch.indices, lengths, strict=True)):
                self._outputs[index] = (tags[row, :n], predicted[row, :n], unseen[row, :n])
        return loss

    def batch_size_and_tokens(self, batch: TaggingBatch) -> tuple[int, int]:
        return len(batch), int(batch.lengths.sum())

    # --- prediction ------------------------------------------------------------------------------
    @torch.no_grad()
    def tag(self, sentences: list[list[str]], batch_size: int = 64) -> list[list[str]]:
        """The tags of each sentence's words (one list per sentence; an empty sentence gets [])."""
        was_training = self.training
        self.eval()
        try:
            cache: dict[str, tuple[int, list[int]]] = {}
            encoded = [encode_sentence(words, self.words, self.chars, cache) if words else None
                       for words in sentences]
            results: list[list[str]] = [[] for _ in sentences]
            for rows in length_sorted_chunks(sentences, batch_size):
                batch = collate([encoded[i] for i in rows], self.words.vocab.pad_id, self.chars.vocab.pad_id,
                                rows).to(self.device)
                predicted = self.head.decode(self(batch), batch.mask).tolist()  # (B, T)
                for i, tags, n in zip(rows, predicted, batch.lengths.tolist(), strict=True):
                    results[i] = [self.tags[t] for t in tags[:n]]
            return results
        finally:
            self.train(was_training)

    # --- evaluation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._outputs = {}

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self.log_scores("val")

    def on_test_epoch_end(self) -> None:
        self.log_scores("test")

    def gathered_outputs(self) -> dict[int, tuple[Tensor, Tensor, Tensor]]:
        """Every rank's (gold, predicted, unseen) per sentence index; a sentence seen twice counts once."""
        outputs = self._outputs
        if self.trainer.world_size > 1:
            parts: list[dict | None] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(parts, outputs)
            outputs = {}
            for part in parts:
                outputs.update(part)
        return outputs

    def log_scores(self, stage: str) -> dict[str, float]:
        outputs = self.gathered_outputs()
        self._outputs = {}
        if not outputs:
            return {}
        gold, predicted, unseen = (torch.cat(column) for column in zip(*outputs.values(), strict=True))
        scores = tagging_scores(gold, predicted, unseen, self.tags)
        headline = ("acc", "acc_unseen")
        self.log_dict({f"{stage}/{k}": scores[k] for k in headline}, prog_bar=True, sync_dist=False)
        self.log_dict({f"{stage}/{k}": v for k, v in scores.items() if k not in headline}, sync_dist=False)
        return scores


def tagging_scores(gold: Tensor, predicted: Tensor, unseen: Tensor, tags: list[str]) -> dict[str, float]:
    """gold, predicted (N,) long, unseen (N,) bool over N words -> accuracy overall (`acc`), on unseen
    words (`acc_unseen`, 0 when there are none), the share of unseen words (`unseen_rate`), and per gold
    tag (`acc/<TAG>`: the share of that tag's words tagged right; tags absent from the gold left out)."""
    correct = gold == predicted  # (N,)
    total = max(len(gold), 1)
    scores = {"acc": float(correct.sum()) / total,
              "acc_unseen": float(correct[unseen].sum()) / max(int(unseen.sum()), 1),
              "unseen_rate": float(unseen.sum()) / total}
    counts = torch.bincount(gold, minlength=len(tags))  # (K,)
    hits = torch.bincount(gold[correct], minlength=len(tags))  # (K,)
    for k, tag in enumerate(tags):
        if counts[k] > 0:
            scores[f"acc/{tag}"] = float(hits[k]) / float(counts[k])
    return scores
