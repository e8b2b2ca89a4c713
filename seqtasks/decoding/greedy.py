from __future__ import annotations

from seqtasks.configuration.registry import DECODING
from seqtasks.decoding.base import TokenByToken
from seqtasks.decoding.candidates import first_argmax


@DECODING.register("greedy")
class Greedy(TokenByToken):
    """Greedy: the most probable token at every step."""

    draws_at_random = False

    def choose(self, log_probs, generator=None):
        return first_argmax(log_probs)
