"""Conditional generation, one-to-many: a category in, a sequence out (a language -> a surname).

    category -> embedding -> Linear -> tanh -> initial state (h, and c for an LSTM) of every layer
    <bos> c_1 .. c_n  -> embedding [; category embedding (feed_category)] -> RNN -> lm head
                      -> c_1 .. c_n <eos>

Training is teacher-forced: one fused, packed RNN call over the whole batch; the loss is the
cross-entropy per character, the final <eos> included, padding ignored. With `balance_categories`
= a > 0 a name's characters weigh count(category) ** -a in the training loss (scaled to a mean
weight of 1 per training name), so rare categories shape the model too; validation and test
losses stay unweighted. <pad> and <bos> are never predicted; decoding never emits <unk> either.
Decoding drives the same modules one step at a time through `step_function` (the `decoding`
registry's contract), all the requested samples of all categories as one batch.

Metrics: `{val,test}/loss` is the NLL in nats per predicted character (the <eos> counts as one)
and selects the checkpoint. At the end of validation (unless `sample_metrics.on_validation` is
false) and of testing, `sample_metrics.per_category` names are sampled for every category at
`sample_metrics.temperature` from a fixed seed and scored by `seqtasks.metrics.sample_scores`:
novelty (not a training name), distinct, and agreement (the share that the `agreement` classifier
assigns to the requested category; the builder loads it from `agreement_classifier`, a trained
classification checkpoint, and hands it in as a callable). Test also logs the per-category
scores and writes every sample to `<run dir>/samples.tsv`.

What the task needs from the data flows in through the builder (`data_inputs`): the training
names (novelty) and the names per category (`balance_categories`); both are saved with the
checkpoint, so a checkpoint scores on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.callbacks.samples import write_sample_table
from seqtasks.configuration.registry import DECODING, TASKS, check_arguments
from seqtasks.configuration.validation import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Rate
from seqtasks.data.classification import ClassificationBatch
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.guidance import GuidedStep, checked_weight
from seqtasks.decoding.sampling import Sampling
from seqtasks.errors import ConfigError
from seqtasks.heads.lm import LanguageModelHead
from seqtasks.metrics import Classify, loss_scores, sample_scores
from seqtasks.tasks.base import PredictOptions, SeqTask


@dataclass(frozen=True)
class SampleMetrics:
    """How the sample metrics are measured (`task.sample_metrics.*`)."""

    per_category: PositiveInt = 100  # samples per category
    temperature: PositiveFloat = 0.8  # sampling temperature
    seed: int = 0  # the samples' seed: the same samples for the same weights
    on_validation: bool = True  # false: only at test time
    logged: NonNegativeInt = 3  # samples per category printed at test time (all are in samples.tsv)


@TASKS.register("generation")
class GenerationTask(SeqTask):
    """Conditional generation (one-to-many): a category sets the RNN's initial state; samples a sequence."""

    head_sort = LanguageModelHead
    not_saved: ClassVar[tuple[str, ...]] = ("agreement",)
    needs_input = False

    @classmethod
    def validation_metrics(cls, task_config: dict[str, Any]) -> tuple[str, ...]:
        """loss; with sample metrics on validation also novelty, distinct and (with a classifier) agreement."""
        options = task_config.get("sample_metrics") or {}
        if not options.get("on_validation", SampleMetrics.on_validation):
            return ("loss",)
        return ("loss", "novelty", "distinct") + (("agreement",) if task_config.get("agreement_classifier") else ())

    def __init__(
        self,
        encoder: dict,
        head: dict,
        decoding: dict,
        category_dim: PositiveInt = 32,
        embedding_dim: PositiveInt = 64,
        feed_category: bool = True,
        dropout: Rate = 0.1,
        max_length: PositiveInt = 24,
        balance_categories: NonNegativeFloat = 0.0,
        category_dropout: Rate = 0.0,
        guidance: NonNegativeFloat = 1.0,
        guidance_plausibility: Rate = 0.0,
        sample_metrics: dict | None = None,
        agreement_classifier: str | None = None,
        training_names: list[str] | None = None,
        category_counts: dict[str, int] | None = None,
        agreement: Classify | None = None,
        **shared: Any,
    ):
        super().__init__(**shared)
        self.tokenizer = self.tokenizers["text"]
        self.categories: list[str] = list(self.tokenizers["labels"].vocab.tokens)
        vocab = self.tokenizer.vocab
        for token, token_id in (("<pad>", vocab.pad_id), ("<bos>", vocab.bos_id), ("<eos>", vocab.eos_id)):
            if token_id is None:
                raise ConfigError(f"generation needs a text tokenizer with a {token} token (tokenizer.specials)")
        self.pad_id, self.bos_id, self.eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id
        self.max_length = max_length
        self.feed_category = feed_category
        self.sample_metrics = SampleMetrics(
            **check_arguments(SampleMetrics, sample_metrics or {}, "task.sample_metrics")
        )
        self.training_names = set(training_names or ())
        self.agreement = agreement
        self._sample_rows: list[tuple[str, str, bool, str]] = []
        vocab_size = len(self.tokenizer)

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=self.pad_id)
        # With category dropout one more row: "no category", the names' prior that guidance weighs against.
        self.category_dropout = category_dropout
        self.none_category = len(self.categories) if category_dropout > 0 else None
        self.category_embedding = nn.Embedding(len(self.categories) + (category_dropout > 0), category_dim)
        self.use_guidance(guidance, key="task.guidance")
        self.guidance_plausibility = guidance_plausibility
        self.dropout = nn.Dropout(dropout)
        self.encoder = self.build_encoder(
            encoder,
            embedding_dim + (category_dim if feed_category else 0),
            left_to_right="generation produces a sequence left to right",
        )
        # One vector per state tensor (h; h and c for an LSTM) of every layer.
        self.state_tensors = self.encoder.reference_cell.state_size
        self.initial = nn.Linear(category_dim, self.state_tensors * self.encoder.num_layers * self.encoder.hidden_size)
        self.head = self.build_head(head, input_size=self.encoder.output_size, vocab_size=vocab_size)
        self.strategy: DecodingStrategy = DECODING.build(decoding, "decoding")

        # Never predicted: <pad> and <bos> (training and decoding alike); decoding also never emits <unk>.
        never = [self.pad_id, self.bos_id]
        not_emitted = sorted({*never, *([vocab.unk_id] if vocab.unk_id is not None else [])})
        self.register_buffer("never_ids", torch.tensor(never, dtype=torch.long), persistent=False)
        self.register_buffer("not_emitted_ids", torch.tensor(not_emitted, dtype=torch.long), persistent=False)
        self.register_buffer(
            "category_weights", self.balance(category_counts or {}, balance_categories), persistent=False
        )

    @classmethod
    def data_inputs(cls, data: Any) -> dict[str, Any]:
        """The training names (novelty) and the number of training names per category."""
        train = data.read("train")
        counts: dict[str, int] = {}
        for _, category in train:
            counts[category] = counts.get(category, 0) + 1
        return {"training_names": sorted({name for name, _ in train}), "category_counts": counts}

    def balance(self, counts: dict[str, int], alpha: float) -> Tensor:
        """(C,) training-loss weight of each category's names: count ** -alpha, scaled so that the
        mean weight per training name is 1 (alpha 0, or no counts: all 1)."""
        counts_tensor = torch.tensor([float(counts.get(c, 0)) for c in self.categories])  # (C,)
        if alpha <= 0 or counts_tensor.sum() == 0:
            return torch.ones(len(self.categories))
        weights = counts_tensor.clamp(min=1) ** -alpha
        return weights * counts_tensor.sum() / (counts_tensor * weights).sum()

    # --- model -------------------------------------------------------------------------------------
    def initial_state(self, categories: Tensor) -> dict[str, Any]:
        """categories (B,) ids -> the decoding state before <bos>: batch-first tensors."""
        embedded = self.category_embedding(categories)  # (B, K)
        layers, hidden = self.encoder.num_layers, self.encoder.hidden_size
        vectors = torch.tanh(self.initial(embedded)).view(-1, self.state_tensors, layers, hidden)  # (B, S, L, H)
        parts = vectors.unbind(1)  # S tensors (B, L, H): batch-first, as the encoder takes them
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
        outputs, rnn_state = self.encoder(embedded, lengths, state["rnn"])  # (B, T, H)
        logits = self.head(outputs).float().index_fill(-1, self.never_ids, float("-inf"))
        return logits, {**state, "rnn": rnn_state}

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

    def name_nll(self, batch: ClassificationBatch, categories: Tensor | None = None) -> Tensor:
        """Summed NLL of each name's characters and its <eos>, started from `categories` (B,)
        (default: the batch's labels): (B,)."""
        logits = self(batch.tokens, batch.lengths, batch.labels if categories is None else categories)  # (B, T+1, V)
        targets = self.targets(batch.tokens, batch.lengths)
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.pad_id, reduction="none")
        return nll.view_as(targets).sum(1)

    def training_loss(self, batch: ClassificationBatch) -> Tensor:
        """NLL per character; each name's characters weighted by its category's weight."""
        weights = self.category_weights[batch.labels]  # (B,)
        characters = batch.lengths.to(weights.device) + 1  # the <eos> counts
        categories = batch.labels
        if self.training and self.none_category is not None:
            # Some names without their category: the model also learns the names' prior, which
            # guidance (task.guidance) extrapolates away from when sampling.
            hidden = torch.rand(categories.shape, device=categories.device) < self.category_dropout  # (B,)
            categories = categories.masked_fill(hidden, self.none_category)
        return (self.name_nll(batch, categories) * weights).sum() / (characters * weights).sum()

    def evaluate(self, batch: ClassificationBatch, stage: str) -> dict[int, tuple[float, int]]:
        rows = zip(self.name_nll(batch).tolist(), (batch.lengths + 1).tolist(), strict=True)
        return dict(zip(batch.indices, rows, strict=True))  # index -> (NLL, predicted characters)

    def score(self, records: list[tuple[float, int]], stage: str) -> dict[str, float]:
        scores = {"loss": loss_scores(sum(nll for nll, _ in records), sum(n for _, n in records))["loss"]}
        if stage == "test" or self.sample_metrics.on_validation:
            samples, per_category = self.sample_scores()
            scores.update(samples if stage == "test" else {k: v for k, v in samples.items() if "/" not in k})
            self._sample_rows = per_category
        return scores

    def scored(self, stage: str, records: list[tuple[float, int]], scores: dict[str, float]) -> None:
        if stage == "test" and self.trainer.is_global_zero:
            write_sample_table(
                self._sample_rows,
                Path(self.trainer.default_root_dir),
                self.trainer.loggers,
                self.sample_metrics.logged,
                self.sample_metrics.temperature,
                self.global_step,
            )

    # --- decoding ----------------------------------------------------------------------------------
    def use_guidance(self, weight: float, key: str = "guidance") -> None:
        no_prior = (
            "weighs the model against its names' prior, which it learns only from names whose category "
            "it does not see: train with task.category_dropout > 0 (e.g. 0.1)"
        )
        self.guidance = checked_weight(weight, key, no_prior if self.none_category is None else None)

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
            raise ConfigError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(repr(c) for c in unknown)}; choose from: {', '.join(self.categories)}"
            )
        return [index[c] for c in categories]

    def generate_for(
        self,
        categories: list[str],
        strategy: DecodingStrategy | None = None,
        num_samples: int = 1,
        max_len: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[list[str]]:
        """`num_samples` sequences for each category, in one batched decoding call (default strategy:
        the task's own, `task.decoding`): independent samples, or beam search's best hypotheses, best
        first. max_len: at most this many characters (default task.max_length)."""
        strategy = self.strategy_or_default(strategy)
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        ids = torch.tensor(self.category_ids(list(categories)), dtype=torch.long, device=self.device)
        first = ids.new_full((len(ids),), self.bos_id)
        step, state = self.step_function, self.initial_state(ids)
        if self.guidance != 1.0:
            step = GuidedStep(self.step_function, self.guidance, self.guidance_plausibility)
            state = {"input": state, "none": self.initial_state(torch.full_like(ids, self.none_category))}
        with self.inference():
            tokens, _ = strategy.search(
                step,
                state,
                first,
                self.max_length if max_len is None else max_len,
                eos_id=self.eos_id,
                generator=generator,
                n=num_samples,
            )  # (C, N, T)
        return [[self.to_text(row) for row in per_category] for per_category in tokens.tolist()]

    def sample(self, temperature: float, length: int, prime: str, generator: torch.Generator) -> str:
        """One sample per category at `temperature`, a line each (`category: sample`); names end by
        themselves (at most task.max_length), so length and prime do not apply."""
        samples = self.generate_for(self.categories, Sampling(temperature), generator=generator)
        return "\n".join(f"{category}: {texts[0]}" for category, texts in zip(self.categories, samples, strict=True))

    def to_text(self, ids: list[int]) -> str:
        """Decoded tokens up to (not including) the first <eos>."""
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids)

    def sample_scores(self) -> tuple[dict[str, float], list[tuple[str, str, bool, str]]]:
        """`sample_metrics.per_category` samples per category at its temperature and seed, scored
        (seqtasks.metrics.sample_scores): the same on every rank (same weights, same seed)."""
        settings = self.sample_metrics
        generator = torch.Generator(device=self.device).manual_seed(settings.seed)
        samples = self.generate_for(
            self.categories,
            Sampling(temperature=settings.temperature),
            num_samples=settings.per_category,
            generator=generator,
        )
        return sample_scores(dict(zip(self.categories, samples, strict=True)), self.training_names, self.agreement)

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """Input lines are categories -> `num_samples` samples each, tab-separated, one line per input
        line (an empty line stays empty). Without input: `category<TAB>samples` for every category."""

        def samples(categories: list[str]) -> list[list[str]]:
            return (
                self.generate_for(categories, options.strategy, options.num_samples, generator=options.generator)
                if categories
                else []
            )

        if lines is None:
            return ["\t".join([c, *names]) for c, names in zip(self.categories, samples(self.categories), strict=True)]
        generated = iter(samples([line.strip() for line in lines if line.strip()]))
        return ["\t".join(next(generated)) if line.strip() else "" for line in lines]
