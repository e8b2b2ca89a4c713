"""Conditional generation, one-to-many: a category in, a sequence out (a language -> a surname).

    category -> embedding -> Linear -> tanh -> initial state (h, and c for an LSTM) of every layer
    <bos> c_1 .. c_n  -> embedding [; category embedding (feed_category)] -> RNN -> lm head
                      -> c_1 .. c_n <eos>

Training is teacher-forced: one fused, packed RNN call over the whole batch; the loss is the
cross-entropy per character, the final <eos> included, padding ignored. With `balance_categories`
= a > 0 a name's characters weigh count(category) ** -a in the training loss (scaled to a mean
weight of 1 per training name), so rare categories shape the model too; validation and test
losses stay unweighted. <pad> and <bos> are never predicted; decoding never emits <unk>
either. Decoding drives the same
modules one step at a time through `step_function` (the `decoding` registry's contract), all the
requested samples of all categories as one batch.

Metrics: `{val,test}/loss` is the NLL in nats per predicted character (the <eos> counts as one)
and selects the checkpoint. At the end of validation (unless `val_sample_metrics` is false) and
of testing, `samples_per_category` names are sampled for every category (uniform over categories)
at `metric_temperature`, from a fixed seed, and scored:

- `novelty`: share of samples that are non-empty and not a training name (exact string match);
- `agreement`: share of samples that the classifier in `agreement_classifier` (a trained
  `classification` checkpoint, e.g. `experiment=names_classify`) assigns to the requested
  category; left out, with a log line, when `agreement_classifier` is null;
- `distinct`: distinct samples per category / samples (1: no sample repeats within its category).

Test also logs `novelty/<category>` and `agreement/<category>`.

The training names (and category counts) come from the datamodule (`examples("train")`) at setup;
the names are stored in the hyperparameters (`training_names`), so a checkpoint scores novelty on
its own. Test also writes every sample to `<run dir>/samples.tsv` (category, sample, novel, classifier's label)
and logs a few per category.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.beam import BeamSearch
from seqtasks.decoding.sampling import Sampling
from seqtasks.encoders.rnn import to_batch_first, to_layer_first
from seqtasks.errors import ConfigError
from seqtasks.registry import DECODING, ENCODERS, HEADS, TASKS
from seqtasks.tasks.base import SeqTask
from seqtasks.tokenizers.base import Tokenizer

log = logging.getLogger(__name__)


@TASKS.register("generation")
class GenerationTask(SeqTask):
    """Conditional generation (one-to-many): a category sets the RNN's initial state; samples a sequence."""

    monitor = ("val/loss", "min")

    def __init__(
        self,
        tokenizers: dict[str, dict],
        encoder: dict,
        head: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        category_dim: int = 32,
        embedding_dim: int = 64,
        feed_category: bool = True,
        dropout: float = 0.0,
        max_length: int = 24,
        decoding: dict | None = None,
        agreement_classifier: str | None = None,
        samples_per_category: int = 100,
        metric_temperature: float = 0.8,
        metric_seed: int = 0,
        val_sample_metrics: bool = True,
        samples_logged: int = 3,
        balance_categories: float = 0.0,
        training_names: list[str] | None = None,
        nonfinite_loss: str = "raise",
        plugins: list[str] | None = None,
    ):
        super().__init__(optimizer, scheduler, nonfinite_loss, plugins)
        self.save_hyperparameters(logger=False)  # run() logs the whole resolved config instead
        self.tokenizer = Tokenizer.from_state(tokenizers["text"])
        self.categories: list[str] = list(Tokenizer.from_state(tokenizers["labels"]).vocab.tokens)
        vocab = self.tokenizer.vocab
        for token, token_id in (("<pad>", vocab.pad_id), ("<bos>", vocab.bos_id), ("<eos>", vocab.eos_id)):
            if token_id is None:
                raise ConfigError(f"generation needs a text tokenizer with a {token} token "
                                  "(tokenizer.specials)")
        if max_length < 1:
            raise ConfigError(f"task.max_length must be >= 1, got {max_length}")
        if samples_per_category < 1:
            raise ConfigError(f"task.samples_per_category must be >= 1, got {samples_per_category}")
        if balance_categories < 0:
            raise ConfigError(f"task.balance_categories must be >= 0, got {balance_categories}")
        if metric_temperature <= 0:
            raise ConfigError(f"task.metric_temperature must be > 0, got {metric_temperature}")
        self.pad_id, self.bos_id, self.eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id
        self.max_length = max_length
        self.feed_category = feed_category
        vocab_size = len(self.tokenizer)

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=self.pad_id)
        self.category_embedding = nn.Embedding(len(self.categories), category_dim)
        self.dropout = nn.Dropout(dropout)
        self.encoder = ENCODERS.build(encoder, input_size=embedding_dim + (category_dim if feed_category else 0))
        if self.encoder.bidirectional:
            raise ConfigError("generation produces a sequence left to right: set encoder.bidirectional=false")
        # One vector per state tensor (h; h and c for an LSTM) of every layer.
        self.state_tensors = self.encoder.reference_cell.state_size
        self.initial = nn.Linear(category_dim,
                                 self.state_tensors * self.encoder.num_layers * self.encoder.hidden_size)
        self.head = HEADS.build(head, input_size=self.encoder.output_size, vocab_size=vocab_size)

        # Never predicted: <pad> and <bos> (training and decoding alike); decoding also never emits <unk>.
        never = [i for i in (self.pad_id, self.bos_id) if i is not None]
        not_emitted = never + ([vocab.unk_id] if vocab.unk_id is not None else [])
        self.register_buffer("never_ids", torch.tensor(never, dtype=torch.long), persistent=False)
        self.register_buffer("not_emitted_ids", torch.tensor(sorted(set(not_emitted)), dtype=torch.long),
                             persistent=False)

        self.strategy: DecodingStrategy = (DECODING.build(decoding) if decoding
                                           else Sampling(temperature=metric_temperature))
        self.training_names = set(training_names or ())
        self.category_weights: Tensor | None = None  # (C,) training-loss weight of each category's names
        self._classifier: Any = None  # loaded on first use; kept out of the module tree (state_dict)
        self._classifier_loaded = False

    # --- model -------------------------------------------------------------------------------------
    def initial_state(self, categories: Tensor) -> dict[str, Any]:
        """categories (B,) ids -> the decoding state before <bos>: batch-first tensors."""
        embedded = self.category_embedding(categories)  # (B, K)
        layers, hidden = self.encoder.num_layers, self.encoder.hidden_size
        vectors = torch.tanh(self.initial(embedded)).view(-1, self.state_tensors, layers, hidden)  # (B, S, L, H)
        parts = vectors.unbind(1)  # S tensors (B, L, H): batch-first already
        state: dict[str, Any] = {"rnn": parts[0] if self.state_tensors == 1 else tuple(parts)}
        if self.feed_category:
            state["category"] = embedded
        return state

    def run_rnn(self, inputs: Tensor, lengths: Tensor | None, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """inputs (B, T) token ids -> logits (B, T, V) (pad and bos masked), state after."""
        embedded = self.dropout(self.embedding(inputs))  # (B, T, E)
        if self.feed_category:
            category = state["category"][:, None].expand(-1, inputs.shape[1], -1).to(embedded.dtype)
            embedded = torch.cat([embedded, self.dropout(category)], dim=-1)  # (B, T, E+K)
        outputs, rnn_state = self.encoder(embedded, lengths, to_layer_first(state["rnn"]))  # (B, T, H)
        logits = self.head(outputs).float().index_fill(-1, self.never_ids, float("-inf"))
        return logits, {**state, "rnn": to_batch_first(rnn_state)}

    def forward(self, tokens: Tensor, lengths: Tensor, categories: Tensor) -> Tensor:
        """Teacher forcing: tokens (B, T) padded, lengths (B,), categories (B,) -> logits (B, T+1, V):
        position t predicts token t (position `length` predicts <eos>), from <bos> and tokens < t."""
        bos = tokens.new_full((tokens.shape[0], 1), self.bos_id)
        logits, _ = self.run_rnn(torch.cat([bos, tokens], dim=1), lengths + 1, self.initial_state(categories))
        return logits

    def targets(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T) padded -> (B, T+1): the tokens, <eos> after each, <pad> after that."""
        targets = torch.cat([tokens, tokens.new_full((tokens.shape[0], 1), self.pad_id)], dim=1)
        return targets.scatter(1, lengths.to(tokens.device)[:, None], self.eos_id)

    def step(self, batch, stage: str) -> Tensor:
        logits = self(batch.tokens, batch.lengths, batch.labels)  # (B, T+1, V)
        targets = self.targets(batch.tokens, batch.lengths)
        if stage == "train" and self.category_weights is not None:
            # Each name's characters weighted by its category's weight; a weighted mean per character.
            nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.pad_id,
                                  reduction="none").view_as(targets)  # (B, T+1)
            weights = self.category_weights.to(nll.device)[batch.labels]  # (B,)
            loss = (nll.sum(1) * weights).sum() / ((batch.lengths.to(nll.device) + 1) * weights).sum()
        else:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.pad_id)
        # Weighted by predicted characters: the epoch's value is the NLL per character over the split.
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=int(batch.lengths.sum()) + len(batch),
                 sync_dist=stage != "train")
        return loss

    def batch_size_and_tokens(self, batch) -> tuple[int, int]:
        return len(batch), int(batch.lengths.sum()) + len(batch)  # characters, and one <eos> per name

    # --- decoding ----------------------------------------------------------------------------------
    def next_token_log_probs(self, logits: Tensor) -> Tensor:
        """Logits (..., V) -> the log-probabilities decoding uses: <pad>, <bos>, <unk> never emitted."""
        return logits.float().index_fill(-1, self.not_emitted_ids, float("-inf")).log_softmax(dim=-1)

    def step_function(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """Decoding step: previous tokens (B,) -> next-token log-probabilities (B, V), state.
        The state is a dict of batch-first tensors: the RNN's (B, L, H) and the category embedding."""
        logits, state = self.run_rnn(tokens[:, None], None, state)  # (B, 1, V)
        return self.next_token_log_probs(logits[:, 0]), state

    def category_ids(self, categories: list[str]) -> list[int]:
        index = {category: i for i, category in enumerate(self.categories)}
        unknown = [c for c in categories if c not in index]
        if unknown:
            raise ConfigError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                              f"{', '.join(repr(c) for c in unknown)}; choose from: {', '.join(self.categories)}")
        return [index[c] for c in categories]

    @torch.no_grad()
    def generate_for(self, categories: list[str], strategy: DecodingStrategy | dict | None = None,
                     num_samples: int = 1, max_len: int | None = None,
                     generator: torch.Generator | None = None) -> list[list[str]]:
        """`num_samples` sequences for each category, in one batched decoding call; strategy: a
        DecodingStrategy or a `decoding` config (default: the task's own, `task.decoding`). Beam
        search returns its n_best hypotheses, best first (num_samples <= n_best). max_len: at most
        this many characters (default task.max_length)."""
        if isinstance(strategy, dict):
            strategy = DECODING.build(strategy)
        strategy = strategy or self.strategy
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        ids = torch.tensor(self.category_ids(list(categories)), dtype=torch.long, device=self.device)
        max_len = self.max_length if max_len is None else max_len
        was_training = self.training
        self.eval()
        try:
            if isinstance(strategy, BeamSearch):
                if num_samples > strategy.n_best:
                    raise ConfigError(f"beam search returns at most n_best={strategy.n_best} hypotheses per "
                                      f"category; asked for {num_samples} (set decoding.n_best)")
                state = self.initial_state(ids)
                first = ids.new_full((len(ids),), self.bos_id)
                tokens, _ = strategy.search(self.step_function, state, first, max_len, eos_id=self.eos_id)
                tokens = tokens[:, :num_samples]  # (C, N, T)
            else:
                rows = ids.repeat_interleave(num_samples)  # (C*N,): category 0's samples first
                state = self.initial_state(rows)
                first = rows.new_full((len(rows),), self.bos_id)
                tokens = strategy.decode(self.step_function, state, first, max_len, eos_id=self.eos_id,
                                         generator=generator)
                tokens = tokens.view(len(ids), num_samples, -1)  # (C, N, T)
            return [[self.to_text(row) for row in per_category] for per_category in tokens.tolist()]
        finally:
            self.train(was_training)

    def to_text(self, ids: list[int]) -> str:
        """Decoded tokens up to (not including) the first <eos>."""
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        return self.tokenizer.decode(ids)

    # --- training names and the agreement classifier -------------------------------------------------
    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is None or not hasattr(data, "examples"):
            return
        if not self.training_names:
            names = sorted({text for text, _ in data.examples("train")})
            self.training_names = set(names)
            self.hparams["training_names"] = names  # saved with the checkpoint: novelty needs no data
        alpha = self.hparams.balance_categories
        if stage == "fit" and alpha > 0 and self.category_weights is None:
            # weight(c) proportional to count(c) ** -alpha, scaled so the mean weight per training name is 1.
            index = {category: i for i, category in enumerate(self.categories)}
            labels = torch.tensor([index[label] for _, label in data.examples("train") if label in index])
            counts = torch.bincount(labels, minlength=len(self.categories)).float()
            weights = counts.clamp(min=1) ** -alpha
            self.category_weights = weights * len(labels) / (counts * weights).sum()

    def on_fit_start(self) -> None:
        super().on_fit_start()
        path = self.hparams.agreement_classifier
        if path is not None and not Path(path).is_file():  # fail now, not after training
            raise ConfigError(f"task.agreement_classifier: {path}: checkpoint not found "
                              "(train one with experiment=names_classify, or set it to null)")
        if path is None:
            rank_zero_info("generation: task.agreement_classifier is null; the agreement metric is skipped")

    def classifier(self):
        """The agreement classifier (a task with classify(texts)), or None; loaded once, on CPU."""
        if not self._classifier_loaded:
            self._classifier_loaded = True
            path = self.hparams.agreement_classifier
            if path is None:
                pass
            elif not Path(path).is_file():
                log.warning("generation: agreement classifier %s not found; agreement is skipped", path)
            else:
                from seqtasks.checkpoint import load_task

                classifier = load_task(path)
                if not hasattr(classifier, "classify"):
                    raise ConfigError(f"task.agreement_classifier: {path} holds a "
                                      f"'{classifier.registered_name}' task, not a classifier")
                missing = sorted(set(self.categories) - set(classifier.labels))
                if missing:
                    log.warning("generation: the agreement classifier never predicts %s", ", ".join(missing))
                object.__setattr__(self, "_classifier", classifier)  # not a submodule: not saved, not moved
        return self._classifier

    # --- sample metrics --------------------------------------------------------------------------------
    def sample_scores(self) -> tuple[dict[str, float], list[tuple[str, str, bool, str]]]:
        """samples_per_category samples per category at metric_temperature, from metric_seed ->
        ({novelty, agreement, distinct, novelty/<category>, agreement/<category>},
        rows (category, sample, novel, classifier's label or ''))."""
        generator = torch.Generator(device=self.device).manual_seed(self.hparams.metric_seed)
        samples = self.generate_for(self.categories, Sampling(temperature=self.hparams.metric_temperature),
                                    num_samples=self.hparams.samples_per_category, generator=generator)
        flat = [(category, text) for category, texts in zip(self.categories, samples, strict=True) for text in texts]
        novel = [bool(text) and text not in self.training_names for _, text in flat]
        scores = {"novelty": sum(novel) / len(flat),
                  "distinct": sum(len(set(texts)) for texts in samples) / len(flat)}
        predicted: list[str] | None = None
        classifier = self.classifier()
        if classifier is not None:
            results = classifier.classify([text for _, text in flat])
            predicted = [result[0] if result is not None else "" for result in results]
            scores["agreement"] = sum(p == c for p, (c, _) in zip(predicted, flat, strict=True)) / len(flat)
        per_category = self.hparams.samples_per_category
        for i, category in enumerate(self.categories):  # rows i*N .. i*N+N-1 are this category's samples
            rows = slice(i * per_category, (i + 1) * per_category)
            scores[f"novelty/{category}"] = sum(novel[rows]) / per_category
            if predicted is not None:
                scores[f"agreement/{category}"] = sum(p == category for p in predicted[rows]) / per_category
        rows = [(c, text, n, p) for (c, text), n, p in zip(flat, novel, predicted or [""] * len(flat), strict=True)]
        return scores, rows

    def on_validation_epoch_end(self) -> None:
        if self.hparams.val_sample_metrics and not self.trainer.sanity_checking:
            scores, _ = self.sample_scores()  # the same on every rank: same weights, same seed
            headline = {f"val/{k}": v for k, v in scores.items() if "/" not in k}
            self.log_dict(headline, prog_bar=True, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        scores, rows = self.sample_scores()
        self.log_dict({f"test/{k}": v for k, v in scores.items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            self.write_samples(rows)

    def write_samples(self, rows: list[tuple[str, str, bool, str]]) -> None:
        directory = Path(self.trainer.default_root_dir)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "samples.tsv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["category", "sample", "novel", "classified_as"])
            writer.writerows((c, text, int(novel), label) for c, text, novel, label in rows)
        shown = []
        for category in self.categories:
            texts = [text for c, text, _, _ in rows if c == category][:self.hparams.samples_logged]
            shown.append(f"{category}: {', '.join(texts)}")
        text = "\n".join(shown)
        rank_zero_info(f"samples (temperature {self.hparams.metric_temperature}), all in "
                       f"{directory / 'samples.tsv'}:\n{text}")
        for logger in self.trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_text"):  # TensorBoard
                experiment.add_text("test/samples", text.replace("\n", "  \n"), self.global_step)
