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

from seqtasks.decoding.base import DecodingStrategy
from seqtasks.decoding.sampling import Sampling
from seqtasks.encoders.rnn import to_batch_first, to_layer_first
from seqtasks.errors import ConfigError
from seqtasks.registry import ENCODERS, HEADS, TASKS
from seqtasks.tasks.base import SeqTask
from seqtasks.tokenizers.base import Tokenizer


def detach_state(state: Any) -> Any:
    if state is None or isinstance(state, Tensor):
        return None if state is None else state.detach()
    return tuple(s.detach() for s in state)


@TASKS.register("language_model")
class LanguageModelTask(SeqTask):
    """Next-token language model (char-rnn) with truncated BPTT; generates text."""

    def __init__(
        self,
        tokenizers: dict[str, dict],
        encoder: dict,
        head: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        embedding_dim: int = 128,
        tbptt_steps: int = 128,
        nonfinite_loss: str = "raise",
        plugins: list[str] | None = None,
    ):
        super().__init__(optimizer, scheduler, nonfinite_loss, plugins)
        self.save_hyperparameters(logger=False)  # run() logs the whole resolved config instead
        self.tokenizer = Tokenizer.from_state(tokenizers["text"])
        self.tbptt_steps = tbptt_steps
        vocab_size = len(self.tokenizer)
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder = ENCODERS.build(encoder, input_size=embedding_dim)
        if getattr(self.encoder, "bidirectional", False):
            raise ConfigError("a language model predicts the next token from the past only: "
                              "set encoder.bidirectional=false")
        self.head = HEADS.build(head, input_size=self.encoder.output_size, vocab_size=vocab_size)
        # Special tokens never occur inside the text stream, so generation never emits them.
        specials = [self.tokenizer.vocab.id(t) for t in self.tokenizer.specials if t in self.tokenizer.vocab]
        self.register_buffer("special_ids", torch.tensor(specials, dtype=torch.long), persistent=False)
        self._carry: dict[str, Any] = {}
        self._val_totals = torch.zeros(2)  # summed loss (nats), token count

    def forward(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """tokens (B, T) -> logits (B, T, V), final state."""
        states, state = self.encoder(self.embedding(tokens), None, state)  # (B, T, H)
        return self.head(states), state

    def step(self, batch, stage: str) -> Tensor:
        inputs, targets = batch  # (B, T) each
        logits, state = self(inputs, self._carry.get(stage))
        self._carry[stage] = detach_state(state)  # truncate the gradient here, keep the values
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        if stage == "train":
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/bpc", loss / math.log(2))
        else:
            self._val_totals += torch.stack([loss.detach().cpu() * targets.numel(),
                                             torch.tensor(float(targets.numel()))])
        return loss

    def batch_size_and_tokens(self, batch) -> tuple[int, int]:
        inputs, _ = batch  # (B, T)
        return inputs.shape[0], inputs.numel()

    def on_train_epoch_start(self) -> None:
        self._carry.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._carry.pop("val", None)
        self._val_totals = torch.zeros(2)

    def on_validation_epoch_end(self) -> None:
        # Token-weighted over the whole validation stream, summed over ranks.
        totals = self._val_totals.to(self.device)
        if self.trainer.world_size > 1:
            totals = self.all_gather(totals).sum(dim=0)
        loss = (totals[0] / totals[1].clamp(min=1)).item()
        self.log_dict({"val/loss": loss, "val/bpc": loss / math.log(2), "val/ppl": math.exp(min(loss, 50))},
                      prog_bar=True, sync_dist=False)

    # --- generation ------------------------------------------------------------------------------
    def step_function(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Decoding step: previous tokens (B,) -> next-token log-probabilities (B, V), state.

        The state is batch-first, (B, L*D, H) per tensor, as decoding strategies require (beam search
        reorders it on dim 0); the encoder's own layout (L*D, B, H) stays inside this function."""
        logits, state = self(tokens[:, None], to_layer_first(state))  # (B, 1, V)
        logits = logits[:, 0].float().index_fill(1, self.special_ids, float("-inf"))
        return logits.log_softmax(dim=-1), to_batch_first(state)

    @torch.no_grad()
    def generate(self, prime: str, length: int, strategy: DecodingStrategy | None = None, num_samples: int = 1,
                 generator: torch.Generator | None = None) -> list[str]:
        """`num_samples` continuations of `prime`, `length` tokens each (prime included in the text);
        by default sampled at temperature 1, as char-rnn does."""
        strategy = strategy or Sampling()
        was_training = self.training
        self.eval()
        try:
            ids = self.tokenizer.encode(prime or "\n")
            prime_ids = torch.tensor(ids, device=self.device).repeat(num_samples, 1)  # (N, P)
            state = None
            if prime_ids.shape[1] > 1:
                _, state = self(prime_ids[:, :-1])  # the prime in one fused call
                state = to_batch_first(state)  # the layout step_function takes
            out = strategy.decode(self.step_function, state, prime_ids[:, -1], length, generator=generator)
            return [prime + self.tokenizer.decode(row) for row in out.tolist()]
        finally:
            self.train(was_training)
