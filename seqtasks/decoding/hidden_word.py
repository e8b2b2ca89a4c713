"""A second opinion from the same decoder with its previous word hidden: each step runs the step
function twice from the same state, once on the previous token and once on <unk> in its place (what
word dropout trains the decoder to read), and scores every token by the larger of the two,

    log p  =  log_softmax( max(log p(. | previous word), log p(. | <unk>) + bonus) ),

keeping the state of the first run, so the search goes on from the words it chose. The first step
(previous token <bos>, which word dropout never hides) takes the decoder's own score alone, and the
hidden-word run has no vote for the previous token itself: not knowing which word it hid, it may
propose that word again ("a yellow yellow").

Why: a decoder learns from its training targets which word may follow which. A captioner that never
saw a green triangle learns that "triangle" does not follow "green"; fed "green" over a green
triangle it writes "green square", while the same decoder fed <unk> there reads the shape from the
image and writes "triangle" (teacher-forced on the shapes test set's unseen colour-shape pairs: the
right shape ranked first after 27% of the colour words, and after 88% of them hidden). Where the
previous word matters (after "left", "of"), the hidden-word run is unsure and the decoder's own
score wins; where it vetoes what the input shows, the hidden-word run outvotes it. `bonus` (in
nats) shifts the balance towards the hidden-word run; the score of a token neither run supports
stays low. Mixing the two distributions (a weighted sum of probabilities) did worse on the shapes
validation set than taking the larger score: a mixture lets the hidden-word run's repetitions
("a white white") through wherever it leans on them.

It wraps any step function, guided or not (`seqtasks/decoding/guidance.py`), so every strategy
can use it; it doubles the decoder's work per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqtasks.decoding.base import StepFunction
from seqtasks.errors import ConfigError


def checked_bonus(bonus: float | None, key: str, word_dropout: float) -> float | None:
    """bonus, if the decoder learned to read <unk> for a previous word (word_dropout > 0) -> else
    a ConfigError naming `key`. None: no hidden-word run."""
    if bonus is not None and word_dropout == 0:
        raise ConfigError(
            f"{key}={bonus} reads the decoder with its previous word hidden (<unk>), which it learns only "
            "from word dropout: train with head.word_dropout > 0 (e.g. 0.25), or drop the setting"
        )
    return bonus


class HiddenWordStep:
    """step(prev, state) scored by the larger of the step on prev and the step on <unk> + bonus
    (the step on prev alone where prev is <bos>, and for the token prev itself)."""

    def __init__(self, step: StepFunction, unk_id: int, bos_id: int, bonus: float):
        self.step, self.unk_id, self.bos_id, self.bonus = step, unk_id, bos_id, bonus

    def __call__(self, prev_tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        seen, after = self.step(prev_tokens, state)  # (N, V) log-probabilities, the state the search keeps
        hidden, _ = self.step(torch.full_like(prev_tokens, self.unk_id), state)  # (N, V)
        hidden = hidden.scatter(1, prev_tokens[:, None], float("-inf"))  # no vote for the word it hid
        hidden = hidden.masked_fill((prev_tokens == self.bos_id)[:, None], float("-inf"))
        return torch.maximum(seen, hidden + self.bonus).log_softmax(dim=-1), after
