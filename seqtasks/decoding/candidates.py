"""The K best extensions of a beam, without materialising every candidate's score.

Beam search wants, per sentence, the K largest of  score[beam] + log_prob[beam, token]  over all
K x V (beam, token) pairs. Adding the scores to the (L, K, V) log-probabilities and ranking the
(L, K*V) sums is three passes over the largest tensor of a step, plus top-k's own copy of it, and
for a model with a large vocabulary it cost a fifth of a beam step.

Ranking chunks first is exact and reads the log-probabilities once: split every row of V into
chunks of CHUNK tokens and take each chunk's largest log-probability. Each of the K best pairs lies
in a chunk whose maximum (plus its beam's score) is at least that pair's sum, and K such chunks
already hold K sums at least as large, so the K best pairs are all inside the K chunks with the
largest maxima. Only those K x CHUNK candidates are then scored and ranked. Among exactly equal
sums either ranking may keep a different one of them; the scores kept are the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK = 64  # tokens per chunk: the chunk maxima are one vectorised reduction, the survivors K x 64


def best_extensions(scores: Tensor, log_probs: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """scores (L, K) of the beams, log_probs (L, K, V) of their next tokens -> the k best sums
    (L, k), best first, and where they are, as flat indices beam * V + token (L, k)."""
    sentences, beams, vocab = log_probs.shape
    whole = vocab // CHUNK * CHUNK
    maxima = log_probs[..., :whole].unflatten(-1, (-1, CHUNK)).amax(dim=-1)  # (L, K, V // CHUNK)
    if whole < vocab:  # the last, shorter chunk
        maxima = torch.cat([maxima, log_probs[..., whole:].amax(dim=-1, keepdim=True)], dim=-1)  # (L, K, C)
    chunks = maxima.shape[-1]
    _, best_chunks = (scores[..., None] + maxima).flatten(1).topk(k, dim=-1)  # (L, k) of K*C
    beam, chunk = best_chunks // chunks, best_chunks % chunks  # (L, k) each
    tokens = chunk[..., None] * CHUNK + torch.arange(CHUNK, device=log_probs.device)  # (L, k, CHUNK)
    inside = tokens < vocab  # the last chunk may be shorter
    flat = (beam[..., None] * vocab + tokens.clamp(max=vocab - 1)).flatten(1)  # (L, k*CHUNK)
    candidates = log_probs.reshape(sentences, beams * vocab).gather(1, flat)  # (L, k*CHUNK)
    candidates = candidates.view(sentences, k, CHUNK).masked_fill(~inside, float("-inf"))
    candidates = candidates + scores.gather(1, beam)[..., None]  # (L, k, CHUNK)
    best, picked = candidates.flatten(1).topk(k, dim=-1)  # (L, k) of k*CHUNK
    return best, flat.gather(1, picked)
