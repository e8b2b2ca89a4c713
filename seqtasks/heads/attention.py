"""Attention over encoder states (registry `attention`), as used by the attention decoder.

Every attention scores queries (decoder states) against the source positions, masks padding,
normalises with a softmax and returns the weighted sum of the encoder states:

    query (B, Tq, Hq), memory (B, S, Hm), mask (B, S) -> context (B, Tq, Hm), weights (B, Tq, S)

The part of the score that depends on the source alone is computed once per sentence by
`prepare(memory)` ("keys"), not at every decoding step. The query may hold G rows per source
(B*G, Tq, Hq), rows b*G .. b*G+G-1 for source b: beam search's hypotheses then attend over one copy
of their sentence's memory, which it never has to repeat or reorder, in one product per sentence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqtasks.configuration.registry import ATTENTION
from seqtasks.configuration.validation import PositiveInt
from seqtasks.errors import ConfigError


@ATTENTION.base_class
class Attention(nn.Module):
    """Base class of the `attention` registry: subclasses define prepare() and score()."""

    def __init__(self, query_size: PositiveInt, memory_size: PositiveInt):
        super().__init__()
        self.query_size = query_size
        self.memory_size = memory_size

    def prepare(self, memory: Tensor) -> Tensor:
        """Source-side part of the score, once per source: memory (B, S, Hm) -> keys (B, S, K)."""
        return memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (B, Tq, Hq), keys (B, S, K) -> unnormalised scores (B, Tq, S)."""
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B*G, Tq, Hq) -> context (B*G, Tq, Hm), weights (B*G, Tq, S); mask (B, S) is True on
        real source tokens; padding gets exactly zero weight."""
        rows, steps = query.shape[:2]
        grouped = query.reshape(memory.shape[0], -1, query.shape[-1])  # (B, G*Tq, Hq): a source's G rows together
        scores = self.score(grouped, keys).float()  # (B, G*Tq, S); softmax in fp32 under autocast
        weights = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)
        context = torch.bmm(weights.to(memory.dtype), memory)  # (B, G*Tq, Hm)
        return context.view(rows, steps, -1), weights.view(rows, steps, -1)


@ATTENTION.register("dot")
class DotAttention(Attention):
    """Luong dot: score = h_t . h_s (decoder and encoder states must have the same size)."""

    def __init__(self, query_size: PositiveInt, memory_size: PositiveInt):
        if query_size != memory_size:
            raise ConfigError(
                f"dot attention needs the decoder state size ({query_size}) to equal the encoder "
                f"output size ({memory_size}); use attention 'general' or change the sizes"
            )
        super().__init__(query_size, memory_size)

    def score(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))  # (B, Tq, S)


@ATTENTION.register("general")
class GeneralAttention(Attention):
    """Luong general: score = h_t^T W_a h_s."""

    def __init__(self, query_size: PositiveInt, memory_size: PositiveInt):
        super().__init__(query_size, memory_size)
        self.project = nn.Linear(memory_size, query_size, bias=False)

    def prepare(self, memory):
        return self.project(memory)  # (B, S, Hq): W_a h_s

    def score(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))  # (B, Tq, S)


@ATTENTION.register("additive")
class AdditiveAttention(Attention):
    """Bahdanau additive: score = v^T tanh(W q_t + U h_s), an MLP with one hidden layer."""

    def __init__(self, query_size: PositiveInt, memory_size: PositiveInt, attention_size: PositiveInt | None = None):
        super().__init__(query_size, memory_size)
        attention_size = attention_size or query_size
        self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
        self.query_layer = nn.Linear(query_size, attention_size, bias=False)
        self.energy = nn.Linear(attention_size, 1, bias=False)

    def prepare(self, memory):
        return self.key_layer(memory)  # (B, S, A): U h_s

    def score(self, query, keys):
        hidden = torch.tanh(self.query_layer(query)[:, :, None, :] + keys[:, None, :, :])  # (B, Tq, S, A)
        return self.energy(hidden).squeeze(-1)  # (B, Tq, S)


@ATTENTION.register("concat")
class ConcatAttention(AdditiveAttention):
    """Luong concat: score = v^T tanh(W_a [h_t; h_s]), the additive score under Luong's name."""

    # W_a [h_t; h_s] = W_q h_t + W_s h_s: splitting W_a by columns gives exactly the additive form,
    # whose source half can be computed once per sentence.
