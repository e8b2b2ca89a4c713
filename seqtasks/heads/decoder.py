"""Target-side RNN decoder for encoder-decoder tasks (translation): many-to-many, not synced.

The decoder is any registered unidirectional recurrent network (`rnn: {name: gru, ...}`), started
from the encoder's final state (`init`: bridge | last | zero). With attention (Luong et al. 2015,
https://arxiv.org/abs/1508.04025) each decoder state h_t attends over the encoder states and the
attentional vector  a_t = tanh(W_c [h_t; context_t])  predicts the next token. Without input
feeding the decoder RNN does not depend on the attention, so teacher-forced training runs it as
one fused call over the whole target; input feeding (a_{t-1} joins the input at step t) makes it
step by step. `attention: null` is the plain encoder-decoder of Sutskever et al. (2014): the
encoder's final state is all the decoder sees of the source.

Decoding strategies drive `step(prev_tokens, state)`; the state is a dict of batch-first tensors
(decoder RNN state, fed vector, and under PER_INPUT the encoder memory, precomputed attention keys
and source mask), so beam search can repeat and reorder it row by row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqtasks.configuration.registry import ATTENTION, ENCODERS, HEADS, constructor_parameters
from seqtasks.configuration.validation import NonNegativeInt, PositiveInt, Rate
from seqtasks.errors import ConfigError
from seqtasks.heads.base import Head
from seqtasks.regularization import word_dropout
from seqtasks.runtime.arithmetic import output_rows
from seqtasks.tensors import PER_INPUT


@HEADS.register("decoder")
class RecurrentDecoder(Head):
    """RNN decoder with attention over the encoder states (Luong), input feeding optional; attention=null: none."""

    def __init__(
        self,
        input_size: PositiveInt,
        vocab_size: PositiveInt,
        rnn: dict,
        attention: dict | None,
        embedding_dim: PositiveInt = 256,
        input_feeding: bool = False,
        init: Literal["bridge", "last", "zero"] = "bridge",
        tie_embeddings: bool = True,
        dropout: Rate = 0.2,
        word_dropout: Rate = 0.0,
        pad_id: NonNegativeInt = 0,
        unk_id: NonNegativeInt | None = None,
    ):
        super().__init__()
        if attention is None and (init == "zero" or input_feeding):
            raise ConfigError(
                "a decoder without attention sees the source only through its initial state: "
                "use head.init=bridge or last, and head.input_feeding=false"
            )
        if word_dropout > 0 and unk_id is None:
            raise ConfigError(
                "head.word_dropout replaces target tokens by <unk>, which this tokenizer lacks: set it to 0"
            )
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.word_dropout, self.pad_id, self.unk_id = word_dropout, pad_id, unk_id
        self.input_feeding = input_feeding
        self.init = init
        rnn_class = ENCODERS.check(rnn, "head.rnn", given=("input_size",))
        # Input feeding joins the previous attentional vector (the RNN's width) to each step's input.
        feed_size = (
            rnn.get("hidden_size", constructor_parameters(rnn_class)["hidden_size"].default) if input_feeding else 0
        )
        self.rnn = ENCODERS.build(rnn, "head.rnn", input_size=embedding_dim + feed_size)
        if self.rnn.bidirectional:
            raise ConfigError("the decoder generates left to right: set head.rnn.bidirectional=false")
        self.hidden_size = self.rnn.hidden_size
        self.num_layers = self.rnn.num_layers
        if init == "last" and input_size != self.hidden_size:
            raise ConfigError(
                f"head.init=last copies the encoder's final state ({input_size} wide) into the "
                f"decoder ({self.hidden_size} wide): make them equal or use head.init=bridge"
            )
        if init == "bridge":
            self.bridge = nn.Linear(input_size, self.num_layers * self.hidden_size)
        self.attention = None
        if attention is not None:
            self.attention = ATTENTION.build(
                attention, "head.attention", query_size=self.hidden_size, memory_size=input_size
            )
            self.combine = nn.Linear(self.hidden_size + input_size, self.hidden_size, bias=False)
        # The output layer reads the attentional vector; tied weights need it in embedding space.
        self.to_embedding = None
        if tie_embeddings and self.hidden_size != embedding_dim:
            self.to_embedding = nn.Linear(self.hidden_size, embedding_dim, bias=False)
        self.output = nn.Linear(embedding_dim if tie_embeddings else self.hidden_size, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight  # Press & Wolf 2017: fewer parameters, better perplexity

    # --- state -----------------------------------------------------------------------------------
    def initial_state(self, memory: Tensor, mask: Tensor, summary: Tensor) -> dict[str, Any]:
        """memory (B, S, He) encoder states, mask (B, S) true on tokens, summary (B, He) the
        encoder's final state -> the decoder state before the first step (batch-first tensors)."""
        batch = memory.shape[0]
        if self.init == "zero":
            hidden = memory.new_zeros(batch, self.num_layers, self.hidden_size)
        elif self.init == "last":
            hidden = summary[:, None].expand(-1, self.num_layers, -1)  # (B, L, H)
        else:
            hidden = torch.tanh(self.bridge(summary)).view(batch, self.num_layers, self.hidden_size)  # (B, L, H)
        state: dict[str, Any] = {"rnn": self.rnn.state_from_hidden(hidden)}
        if self.attention is not None:
            # Read by every hypothesis of a source, changed by none: beam search keeps one copy per source.
            state[PER_INPUT] = {"memory": memory, "keys": self.attention.prepare(memory), "mask": mask}
        if self.input_feeding:
            state["feed"] = memory.new_zeros(batch, self.hidden_size)
        return state

    # --- one code path for training (T steps) and decoding (1 step) --------------------------------
    def attend(self, outputs: Tensor, state: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """Decoder outputs (B, T, H) -> attentional vectors (B, T, H), attention weights (B, T, S)."""
        if self.attention is None:
            return outputs, None
        source = state[PER_INPUT]
        context, weights = self.attention(outputs, source["memory"], source["keys"], source["mask"])  # (B, T, He)
        return torch.tanh(self.combine(torch.cat([outputs, context], dim=-1))), weights

    def run(self, target_in: Tensor, state: dict[str, Any]) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
        """target_in (B, T) -> attentional vectors (B, T, H), weights (B, T, S) or None, state after."""
        if self.training and self.word_dropout > 0:
            # Hide some previous words (never <bos>), so that the next word leans on the source or
            # image more than on the words before it: a captioner then names pairs it never saw.
            real = (target_in != self.pad_id) & (torch.arange(target_in.shape[1], device=target_in.device) > 0)
            target_in = word_dropout(target_in, self.word_dropout, self.unk_id, real)
        embedded = self.dropout(self.embedding(target_in))  # (B, T, E)
        rnn_state = state["rnn"]
        if not self.input_feeding:
            outputs, rnn_state = self.rnn(embedded, None, rnn_state)  # (B, T, H), one fused call
            vectors, weights = self.attend(outputs, state)
            return vectors, weights, {**state, "rnn": rnn_state}
        feed, all_vectors, all_weights = state["feed"], [], []
        for t in range(embedded.shape[1]):  # input feeding: step t needs the vector of step t-1
            step_input = torch.cat([embedded[:, t], feed.to(embedded.dtype)], dim=-1)[:, None]  # (B, 1, E+H)
            output, rnn_state = self.rnn(step_input, None, rnn_state)  # (B, 1, H)
            vector, weights = self.attend(output, state)
            feed = vector[:, 0]
            all_vectors.append(vector)
            all_weights.append(weights)
        weights = None if self.attention is None else torch.cat(all_weights, dim=1)
        return torch.cat(all_vectors, dim=1), weights, {**state, "rnn": rnn_state, "feed": feed}

    def output_features(self, vectors: Tensor) -> Tensor:
        """Attentional vectors (B, T, H) -> what the output layer reads (B, T, E or H)."""
        vectors = self.dropout(vectors)
        return vectors if self.to_embedding is None else self.to_embedding(vectors)

    def logits(self, vectors: Tensor) -> Tensor:
        """Attentional vectors (B, T, H) -> next-token logits (B, T, V)."""
        return self.output(self.output_features(vectors))

    def forward(self, target_in: Tensor, state: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: target_in (B, T) -> logits (B, T, V), attention weights (B, T, S) or None."""
        vectors, weights, _ = self.run(target_in, state)
        return self.logits(vectors), weights

    def step_features(self, prev_tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One step: prev_tokens (N,) -> what the output layer reads (N, E or H), the state after."""
        vectors, _, state = self.run(prev_tokens[:, None], state)  # (N, 1, H)
        return self.output_features(vectors)[:, 0], state

    def step(self, prev_tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """Decoding step: prev_tokens (N,) -> next-token log-probabilities (N, V), state."""
        features, state = self.step_features(prev_tokens, state)
        return self.output(features).float().log_softmax(dim=-1), state

    def step_within(self, vocabulary: Tensor) -> Callable[[Tensor, dict[str, Any]], tuple[Tensor, dict[str, Any]]]:
        """A decoding step over a shortlist, vocabulary (V',) target ids: prev (N,) positions in
        vocabulary -> log-probabilities over vocabulary (N, V'), normalised over it alone, and the
        state. The output layer's rows are cut once, not at every step."""
        output = output_rows(self.output, vocabulary)  # E -> V'

        def step(prev: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
            features, state = self.step_features(vocabulary[prev], state)
            return output(features).float().log_softmax(dim=-1), state  # (N, V')

        return step
