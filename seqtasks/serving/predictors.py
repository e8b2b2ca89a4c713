"""The inference worker's side: checked Jobs -> one result per Job, `{"output": <the line
seqtasks.predict writes for that input>, ...the task's structured fields}`.

`output` always comes from the task's own prediction path (predict_lines, or the public method it
is made of), so it is predict's line by construction; the structured fields come from the same
call where the task returns them (translation's n-best and attention, captioning's n-best) or are
read back from the line (tags, samples). Classification's per-label probabilities need a second,
batched forward pass: `predict_lines` keeps only the best label.

Jobs with the same decoding share one call (one padded forward pass for a dynamic batch) when the
result of each depends on its own input only: deterministic strategies of the tasks that batch
their inputs. Sampled jobs run one by one, each from its own seed, as predict would run that
input alone, so a client's sample never depends on who else was asking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seqtasks.data.batching import length_sorted_chunks, pad_sequences
from seqtasks.decoding import DecodingStrategy
from seqtasks.serving.rules import Job, build_strategy, deterministic, image_array
from seqtasks.tasks.base import PredictOptions

BATCHED = ("translation", "captioning", "classification", "tagging")  # kinds whose inputs decode together
BATCH_SIZE = 64  # inputs per forward pass, as seqtasks.predict's batch_size
Result = dict[str, Any]


def predict_jobs(task: Any, kind: str, jobs: list[Job], max_image_pixels: int) -> list[Result]:
    """One result per job, in order, each with `batch_size`: how many jobs its call decoded."""
    results: list[Result] = [{} for _ in jobs]
    for rows in calls(task, kind, jobs):
        job = jobs[rows[0]]
        strategy = build_strategy(job.decoding) if job.decoding is not None else None  # None: the task's own
        torch.manual_seed(job.seed)  # as predict: what samples from torch's global generator repeats too
        options = PredictOptions(
            strategy=strategy,
            batch_size=BATCH_SIZE,
            num_samples=job.num_samples,
            generator=torch.Generator(device=task.device).manual_seed(job.seed),
            length=job.length,
            input_format="text",  # a request is one line, never CoNLL-U
            source="<request>",
        )
        if kind == "captioning":
            inputs = [image_array(jobs[i].image, task.inputs["image_size"], max_image_pixels) for i in rows]
        else:
            inputs = [jobs[i].text for i in rows]
        for i, output in zip(rows, PREDICTORS[kind](task, inputs, options), strict=True):
            results[i] = {**output, "batch_size": len(rows)}
    return results


def calls(task: Any, kind: str, jobs: list[Job]) -> list[list[int]]:
    """The jobs' indices grouped into decoding calls."""
    groups: dict[str, list[int]] = {}
    alone = []
    for i, job in enumerate(jobs):
        strategy = build_strategy(job.decoding) if job.decoding is not None else task.strategy
        if kind in BATCHED and deterministic(strategy):
            groups.setdefault(job.batch_key, []).append(i)
        else:
            alone.append([i])
    return [*groups.values(), *alone]


def joined(task: Any, results: list[str]) -> str:
    """The results of one input as predict writes them (an n-best list or samples: several lines)."""
    return task.output_separator.join(results)


# --- one function per kind: inputs -> results ---------------------------------------------------------
def translation(task: Any, lines: list[str], options: PredictOptions) -> list[Result]:
    strategy = task.strategy_or_default(options.strategy)
    if task.decoder.attention is None:
        n_best, maps = task.translate_n_best(lines, strategy, options.batch_size), [None] * len(lines)
    else:
        n_best, maps = task.translate_with_attention(lines, strategy, options.batch_size)
    return [
        {
            "output": joined(task, task.output_lines([hypotheses], strategy)),
            "n_best": [{"text": text, "score": score} for text, score in hypotheses],
            "attention": attention(attention_map) if attention_map is not None else None,
        }
        for hypotheses, attention_map in zip(n_best, maps, strict=True)
    ]


def attention(attention_map: tuple) -> dict[str, Any]:
    """Source pieces, output pieces and the weights (one row per output piece), as predict's
    attention= file has them, to 4 decimals (a heatmap needs no more)."""
    source, target, weights = attention_map
    return {"source": source, "target": target, "weights": [[round(w, 4) for w in row] for row in weights.tolist()]}


def captioning(task: Any, arrays: list, options: PredictOptions) -> list[Result]:
    strategy: DecodingStrategy = task.strategy_or_default(options.strategy)
    n_best = task.caption_arrays(arrays, strategy, options.batch_size)
    return [
        {
            "output": joined(task, task.output_lines([hypotheses], strategy)),
            "n_best": [{"text": text, "score": score} for text, score in hypotheses],
        }
        for hypotheses in n_best
    ]


def language_model(task: Any, lines: list[str], options: PredictOptions) -> list[Result]:
    (prime,) = lines  # one job per call: each samples from its own generator
    samples = task.predict_lines([prime], options)
    return [{"output": joined(task, samples), "samples": samples}]


def generation(task: Any, lines: list[str], options: PredictOptions) -> list[Result]:
    (line,) = task.predict_lines(lines, options)  # one category: its samples on one tab-separated line
    return [{"output": line, "samples": line.split("\t") if line else []}]


def classification(task: Any, lines: list[str], options: PredictOptions) -> list[Result]:
    outputs = task.predict_lines(lines, options)
    probabilities = label_probabilities(task, lines, options.batch_size)
    return [{"output": output, "probabilities": p} for output, p in zip(outputs, probabilities, strict=True)]


def label_probabilities(task: Any, texts: list[str], batch_size: int) -> list[dict[str, float] | None]:
    """Every label's probability for each text (None for an empty one), batched as
    ClassificationTask.classify batches, which returns the best label's alone."""
    tokenizer = task.text_tokenizer
    results: list[dict[str, float] | None] = [None] * len(texts)
    with task.inference():
        encoded = [tokenizer.encode(text) if text.strip() else [] for text in texts]
        for rows in length_sorted_chunks(encoded, batch_size):
            tokens, lengths = pad_sequences([encoded[i] for i in rows], tokenizer.vocab.pad_id, task.device)
            probabilities = task(tokens, lengths).float().softmax(-1).tolist()  # (B, C)
            for i, row in zip(rows, probabilities, strict=True):
                results[i] = dict(zip(task.labels, row, strict=True))
    return results


def tagging(task: Any, lines: list[str], options: PredictOptions) -> list[Result]:
    outputs = task.predict_lines(lines, options)  # each line's tags, space-separated, one per token
    return [
        {"output": output, "tokens": line.split(), "tags": output.split(" ") if output else []}
        for line, output in zip(lines, outputs, strict=True)
    ]


def lines(task: Any, inputs: list[str], options: PredictOptions) -> list[Result]:
    """Any other task: its predict_lines for the one line."""
    return [{"output": joined(task, task.predict_lines(inputs, options))}]


PREDICTORS: dict[str, Callable[[Any, list, PredictOptions], list[Result]]] = {
    "translation": translation,
    "captioning": captioning,
    "language_model": language_model,
    "generation": generation,
    "classification": classification,
    "tagging": tagging,
    "lines": lines,
}
