from __future__ import annotations

from seqtasks.configuration.registry import DECODING
from seqtasks.decoding.base import TokenByToken


@DECODING.register("greedy")
class Greedy(TokenByToken):
    """Greedy: the most probable token at every step."""

    def choose(self, log_probs, generator=None):
        return log_probs.argmax(dim=-1)
