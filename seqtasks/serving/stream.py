"""A language model's samples as they are generated (`POST /stream`): JSON lines, one per token.

    {"texts": ["ROMEO:"]}                     the prime, then what each step adds to each sample
    {"texts": ["\\n"]}  ...
    {"output": "...", "samples": [...], "done": true}   at the end: what /predict answers

`LanguageModelTask.generate` runs its strategy's whole search in one call and returns only the
finished texts, so this module takes the same steps itself: the prime (`prime_state`), then the
step function and the strategy's `choose` (token by token: sampling or greedy), drawing from the
same generator in the same order as `TokenByToken.search` does for `num_samples` rows, and ranking
the samples by their summed log-probabilities at the end, as the search does. The samples are
therefore predict's, for the same prime, length and seed (tests/test_serve.py compares them).
A model change to generate() (a per-token callback) would let this module call it instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from seqtasks.decoding import TokenByToken
from seqtasks.serving.rules import Job, build_strategy
from seqtasks.tensors import repeat_state


def stream_samples(task: Any, job: Job) -> Iterator[dict[str, Any]]:
    """The messages above, for one checked job of a language model."""
    strategy = task.strategy_or_default(build_strategy(job.decoding) if job.decoding is not None else None)
    assert isinstance(strategy, TokenByToken), "rules.check_streamable admits token-by-token strategies only"
    torch.manual_seed(job.seed)
    generator = torch.Generator(device=task.device).manual_seed(job.seed)
    rows, prime, decode = job.num_samples, job.text, task.tokenizer.decode
    with task.inference():
        prime_ids = torch.tensor(task.tokenizer.encode(prime or "\n"), device=task.device)[None]  # (1, P)
        state = task.prime_state(prime_ids[:, :-1])  # as generate() reads the prime
        tokens = prime_ids[:, -1]
        if rows > 1:  # the search's layout: the samples as rows 0 .. rows-1
            state, tokens = repeat_state(state, rows), tokens.repeat_interleave(rows)
        scores = torch.zeros(tokens.shape, dtype=torch.float, device=tokens.device)
        chosen: list[list[int]] = [[] for _ in range(rows)]
        texts = [prime] * rows
        yield {"texts": texts}
        for _ in range(job.length):
            log_probs, state = task.step_function(tokens, state)  # (rows, V)
            tokens = strategy.choose(log_probs, generator)  # (rows,)
            scores += log_probs.float().gather(1, tokens[:, None]).squeeze(1)
            for ids, token in zip(chosen, tokens.tolist(), strict=True):
                ids.append(token)
            new = [prime + decode(ids) for ids in chosen]
            # A subword tokenizer may write a piece differently once the next one follows: then
            # the whole text replaces what the client has.
            if all(text.startswith(old) for text, old in zip(new, texts, strict=True)):
                yield {"texts": [text[len(old) :] for text, old in zip(new, texts, strict=True)]}
            else:
                yield {"texts": new, "replace": True}
            texts = new
    order = scores.sort(descending=True, stable=True).indices.tolist()  # the search's ranking, best first
    samples = [texts[i] for i in order]
    yield {"output": task.output_separator.join(samples), "samples": samples, "done": True}
