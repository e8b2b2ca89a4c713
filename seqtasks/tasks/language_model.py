"""Character (or any token) language model trained with truncated BPTT.

Batches come from `data/stream.py` in stream order: row b of batch i+1 continues row b of batch
i. The final hidden state of each batch is carried into the next one, detached, so gradients
flow back `tbptt_steps` steps (the batch length) while the state sees the whole stream. The
carry is reset at the start of every epoch; training and validation keep separate carries.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqtasks.configuration.registry import DECODING, TASKS
from seqtasks.configuration.validation import NonNegativeFloat, PositiveInt, Rate
from seqtasks.data.stream import StreamBatch
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.sampling import Sampling
from seqtasks.errors import ConfigError
from seqtasks.heads.lm import LanguageModelHead
from seqtasks.metrics import loss_scores
from seqtasks.regularization import embedding_dropout, locked_dropout
from seqtasks.tasks.base import PredictOptions, SeqTask
from seqtasks.tensors import detach_state, map_state


@TASKS.register("language_model")
class LanguageModelTask(SeqTask):
    """Next-token language model (char-rnn) with truncated BPTT; generates text."""

    metrics = ("loss", "bpc", "ppl")
    headline = ("loss", "bpc")
    head_sort = LanguageModelHead
    needs_input = False
    output_separator = "\n\n"

    def __init__(
        self,
        encoder: dict,
        head: dict,
        decoding: dict,
        embedding_dim: PositiveInt = 128,
        tbptt_steps: PositiveInt = 128,
        embedding_dropout: Rate = 0.0,
        input_dropout: Rate = 0.0,
        output_dropout: Rate = 0.0,
        activation_regularization: NonNegativeFloat = 0.0,
        temporal_activation_regularization: NonNegativeFloat = 0.0,
        tie_weights: bool = False,
        **shared: Any,
    ):
        super().__init__(**shared)
        self.tokenizer = self.tokenizers["text"]
        self.tbptt_steps = tbptt_steps
        # AWD-LSTM's regularisation (Merity et al. 2018), training only: seqtasks/regularization.py
        self.embedding_dropout = embedding_dropout
        self.input_dropout, self.output_dropout = input_dropout, output_dropout
        self.activation_regularization = activation_regularization
        self.temporal_activation_regularization = temporal_activation_regularization
        vocab_size = len(self.tokenizer)
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder = self.build_encoder(
            encoder, embedding_dim, left_to_right="a language model predicts the next token from the past only"
        )
        self.head = self.build_head(head, input_size=self.encoder.output_size, vocab_size=vocab_size)
        if tie_weights:
            self.tie_output_to_embedding()
        self.strategy: DecodingStrategy = DECODING.build(decoding, "decoding")
        # Special tokens never occur inside the text stream, so generation never emits them.
        specials = [self.tokenizer.vocab.id(t) for t in self.tokenizer.specials if t in self.tokenizer.vocab]
        self.register_buffer("special_ids", torch.tensor(specials, dtype=torch.long), persistent=False)
        self._carry: dict[str, Any] = {}
        self._carry_epoch: int | None = None  # the epoch a carry restored from a checkpoint belongs to

    def tie_output_to_embedding(self) -> None:
        """One matrix for the input embedding and the output layer (Press and Wolf 2017; AWD-LSTM):
        fewer parameters, and each token's output row learns from its input occurrences too."""
        size = self.embedding.embedding_dim
        if not isinstance(self.head, LanguageModelHead) or self.encoder.output_size != size:
            raise ConfigError(
                f"task.tie_weights shares the embedding ({size} wide) with the lm head's output layer, which "
                f"reads the encoder's {self.encoder.output_size}-wide outputs: use head=lm and "
                f"task.embedding_dim={self.encoder.output_size}"
            )
        self.head.project.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """tokens (B, T), state batch-first or None -> logits (B, T, V), final state."""
        logits, _, state = self.run(tokens, state)
        return logits, state

    def run(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, Tensor, Any]:
        """tokens (B, T), state -> logits (B, T, V), the top layer's outputs (B, T, H), final state."""
        train = self.training
        embedded = embedding_dropout(self.embedding, tokens, self.embedding_dropout if train else 0.0)  # (B, T, E)
        embedded = locked_dropout(embedded, self.input_dropout if train else 0.0)
        states, state = self.encoder(embedded, None, state)  # (B, T, H)
        return self.head(locked_dropout(states, self.output_dropout if train else 0.0)), states, state

    def stream_nll(self, batch: StreamBatch, stage: str) -> tuple[Tensor, Tensor]:
        """NLL (nats) of every predicted token (B, T), continuing the stage's carried state, and the
        top layer's outputs (B, T, H)."""
        carry = map_state(lambda t: t.to(batch.inputs.device), self._carry.get(stage))  # a restored one is on CPU
        logits, states, state = self.run(batch.inputs, carry)
        self._carry[stage] = detach_state(state)  # truncate the gradient here, keep the values
        nll = F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), reduction="none")
        return nll.view_as(batch.targets), states

    def training_loss(self, batch: StreamBatch) -> Tensor:
        nll, states = self.stream_nll(batch, "train")
        loss = nll.mean()
        self.log("train/bpc", loss / math.log(2))
        return loss + self.activation_penalty(states.float())

    def activation_penalty(self, states: Tensor) -> Tensor:
        """AR and TAR (Merity et al. 2017) of the top layer's outputs (B, T, H): alpha * mean(h_t^2)
        keeps activations small, beta * mean((h_t - h_{t-1})^2) keeps them from jumping between
        steps. Both read the outputs before output dropout (AWD-LSTM applies AR after it: the same
        penalty up to the factor 1 / (1 - p) in expectation)."""
        penalty = states.new_zeros(())
        if self.activation_regularization > 0:
            penalty = penalty + self.activation_regularization * states.pow(2).mean()
        if self.temporal_activation_regularization > 0:
            penalty = penalty + self.temporal_activation_regularization * states.diff(dim=1).pow(2).mean()
        return penalty

    def evaluate(self, batch: StreamBatch, stage: str) -> dict[Any, tuple[float, int]]:
        nll = self.stream_nll(batch, stage)[0].sum(1).tolist()  # per row
        return {key: (row_nll, batch.inputs.shape[1]) for key, row_nll in zip(batch.keys, nll, strict=True)}

    def score(self, records: list[tuple[float, int]], stage: str) -> dict[str, float]:
        """Token-weighted over the whole stream: loss (nats/token), bpc (bits/token), ppl."""
        scores = loss_scores(sum(nll for nll, _ in records), sum(count for _, count in records))
        return {**scores, "bpc": scores["loss"] / math.log(2)}

    def on_train_epoch_start(self) -> None:
        # A new epoch starts the stream afresh; an epoch resumed from a checkpoint goes on with the
        # state it had carried to that point. (Lightning may not call this hook when it resumes
        # within an epoch; the restored carry is then simply kept.)
        if self._carry_epoch != self.current_epoch:
            self._carry.pop("train", None)
        self._carry_epoch = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        # The training carry of every rank (each reads its own rows), gathered: (world, B, L, H) per tensor.
        carry = self._carry.get("train")
        if carry is not None:
            carry = map_state(
                lambda t: self.all_gather(t).reshape(-1, *t.shape) if self.trainer.world_size > 1 else t[None], carry
            )
        checkpoint["seqtasks"]["carry"] = {"epoch": self.current_epoch, "state": carry}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("seqtasks", {}).get("carry")
        if saved and saved["state"] is not None:
            rank = self.trainer.global_rank if self._trainer is not None else 0
            self._carry["train"] = map_state(lambda t: t[rank], saved["state"])
            self._carry_epoch = saved["epoch"]

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._carry.pop("val", None)

    # --- generation ------------------------------------------------------------------------------
    def step_function(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Decoding step: previous tokens (B,) -> next-token log-probabilities (B, V), state (batch-first)."""
        logits, state = self(tokens[:, None], state)  # (B, 1, V)
        logits = logits[:, 0].float().index_fill(1, self.special_ids, float("-inf"))
        return logits.log_softmax(dim=-1), state

    def prime_state(self, prime_ids: Tensor) -> Any:
        """prime ids (1, P) -> the state after reading them, in one fused call (None for P = 0):
        where generation's steps start."""
        return self(prime_ids)[1] if prime_ids.shape[1] > 0 else None

    def generate(
        self,
        prime: str,
        length: int,
        strategy: DecodingStrategy | None = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """`num_samples` continuations of `prime`, `length` tokens each (prime included in the text);
        by default with the task's own strategy (sampling at temperature 1, as char-rnn does)."""
        strategy = self.strategy_or_default(strategy)
        with self.inference():
            ids = self.tokenizer.encode(prime or "\n")
            prime_ids = torch.tensor(ids, device=self.device)[None]  # (1, P)
            state = self.prime_state(prime_ids[:, :-1])  # all but the last, which the first step reads
            tokens, _ = strategy.search(
                self.step_function, state, prime_ids[:, -1], length, generator=generator, n=num_samples
            )  # (1, N, length)
            return [prime + self.tokenizer.decode(row) for row in tokens[0].tolist()]

    def sample(self, temperature: float, length: int, prime: str, generator: torch.Generator) -> str:
        """`length` tokens continuing `prime`, sampled at `temperature`."""
        return self.generate(prime, length, Sampling(temperature), generator=generator)[0]

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """`num_samples` samples of `length` tokens for each prime: the input lines, or `prime`."""
        n_best = getattr(options.strategy, "n_best", 1)
        if n_best > 1:  # generate asks the search for num_samples hypotheses, whatever n_best says
            raise ConfigError(
                f"decoding.n_best={n_best}: a language model writes num_samples continuations per prime "
                f"(num_samples={options.num_samples}); set num_samples={n_best} instead"
            )
        primes = [options.prime] if lines is None else lines
        return [
            sample
            for prime in primes
            for sample in self.generate(prime, options.length, options.strategy, options.num_samples, options.generator)
        ]
