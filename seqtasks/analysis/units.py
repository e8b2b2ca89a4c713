"""What each unit of a language model does over a text: its activation at every position (read
through the reference cells' equations, same weights as the fused model), the model's top-k
next-token guesses, and a search for the units whose activation correlates with a text property."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqtasks.analysis.properties import text_properties
from seqtasks.encoders.reference import reference_of
from seqtasks.errors import ConfigError


@dataclass
class UnitTrace:
    """A language model read over one text. Unit names: "h<layer>:<index>" for a hidden unit,
    "c<layer>:<index>" for an LSTM memory cell (layers from 0)."""

    pieces: list[str]  # the text, one token per position (characters for a char model)
    activations: dict[str, Tensor]  # "h0" -> (T, H) hidden states of layer 0; "c0" -> (T, H) memory cells
    top_pieces: list[list[str]]  # T lists of k guesses for the next token, most likely first
    top_probs: Tensor  # (T, k) their probabilities

    def unit(self, name: str) -> Tensor:
        """(T,) activations of one unit, e.g. "h1:42"; a bare "1:42" is the hidden unit."""
        kind, _, index = (name if name[0].isalpha() else "h" + name).partition(":")
        if kind not in self.activations or not index.isdigit() or int(index) >= self.activations[kind].shape[1]:
            layers = sorted(self.activations)
            sizes = ", ".join(f"{k}: 0-{v.shape[1] - 1}" for k, v in self.activations.items())
            raise ConfigError(f"unit={name}: expected <kind><layer>:<index> with kind/layer in {layers} ({sizes})")
        return self.activations[kind][:, int(index)]

    def all_units(self) -> tuple[list[str], Tensor]:
        """Every unit's name, and their activations side by side (T, units)."""
        names = [f"{kind}:{i}" for kind, values in self.activations.items() for i in range(values.shape[1])]
        return names, torch.cat(list(self.activations.values()), dim=1)


@torch.no_grad()
def trace_language_model(task, text: str, top: int = 5) -> UnitTrace:
    """Read `text` with a language-model task: per position, each layer's hidden state (and memory
    cell) after reading it, and the top guesses for the next token."""
    if not hasattr(task, "tokenizer") or not hasattr(task, "encoder") or task.encoder.num_directions != 1:
        raise ConfigError(f"inspect reads left-to-right language models; this is a '{task.registered_name}' task")
    ids = task.tokenizer.encode(text)
    if not ids:
        raise ConfigError("inspect: the input text is empty")
    with task.inference():
        tokens = torch.tensor(ids, device=task.device)[None]  # (1, T)
        logits, _ = task(tokens)  # (1, T, V): the fused model's own predictions
        logits = logits[0].float().index_fill(1, task.special_ids, float("-inf"))
        top_probs, top_ids = logits.softmax(-1).topk(min(top, logits.shape[1]), dim=-1)  # (T, k)
        trace = reference_of(task.encoder.rnn).trace(task.embedding(tokens))
    activations = {}
    for layer, states in enumerate(trace.states):  # one direction: index == layer
        parts = [states] if not isinstance(states[0], tuple) else list(zip(*states, strict=True))
        for kind, steps in zip("hc", parts, strict=False):  # h, then an LSTM's memory cell c (if any)
            activations[f"{kind}{layer}"] = torch.stack(steps)[:, 0].cpu()  # (T, 1, H) -> (T, H)
    vocab = task.tokenizer.vocab.tokens
    # One id per character (char tokenizers): show the text itself, characters unknown to the model
    # included; otherwise each token's own text.
    pieces = list(text) if len(ids) == len(text) else [task.tokenizer.decode([i]) for i in ids]
    return UnitTrace(pieces, activations, [[vocab[i] for i in row] for row in top_ids.tolist()], top_probs.cpu())


def correlations(values: Tensor, target: Tensor) -> Tensor:
    """Pearson r of every column of values (T, U) with target (T,): (U,); 0 for a constant column."""
    values = values.double() - values.double().mean(0)
    target = target.double() - target.double().mean()
    norms = values.norm(dim=0) * target.norm()
    return torch.where(norms > 0, (values * target[:, None]).sum(0) / norms.clamp_min(1e-300), 0.0)


@dataclass
class Finding:
    property: str
    unit: str
    r: float


def search_units(trace: UnitTrace, pattern: str | None = None, top: int = 3) -> tuple[list[Finding], list[str]]:
    """The `top` units by |r| for every text property (properties.py) present in the text, and the
    names of the properties that are absent (constant over the text, so no correlation exists)."""
    text = "".join(trace.pieces)
    ends = torch.tensor([len(p) for p in trace.pieces]).cumsum(0) - 1  # each piece's last character
    names, values = trace.all_units()
    findings, absent = [], []
    for name, per_char in text_properties(text, pattern).items():
        target = torch.tensor(per_char)[ends.clamp_min(0)]  # (T,) the property after each piece
        if bool((target == target[0]).all()):
            absent.append(name)
            continue
        r = correlations(values, target)
        for index in r.abs().argsort(descending=True)[:top].tolist():
            findings.append(Finding(name, names[index], float(r[index])))
    return findings, absent
