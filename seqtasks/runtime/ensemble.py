"""`ckpt=[a.ckpt,b.ckpt,...]` of predict and evaluate: trained models of one task run as one, their
probabilities averaged (seqtasks/decoding/ensemble.py).

The first member's task does everything but the network, with its own settings: tokenisation,
batching, one search (its decoding strategy, translation's max_length and max_length_ratio) and
detokenisation, and evaluate's metrics. What computes with the network is rebound on it, as
backend=onnxruntime binds its graphs (seqtasks/onnx/backend.py), to run every member and average:

    translation     task.encode -> the tuple of the members' decoder states; task.decoder.step ->
                    every member's step on its own state, the log of their mean next-token
                    probabilities (shortlisted steps alike); task.decoder's teacher-forced pass
                    (evaluate's loss) -> the log of the mean probabilities, no attention weights
    classification  task.forward -> the log of the mean class probabilities
    tagging         task.emissions -> the log of the mean tag probabilities (softmax taggers)

The tasks read those logs as logits: softmax and argmax give the mean's, and cross-entropy (log
softmax leaves a log-probability as it is) the ensemble's loss. A CRF tagger is refused: it scores
whole tag sequences with its own transitions, so emissions averaged under one member's transitions
would be a model nobody trained. Captioning, generation and language models are refused too.

Members must share every tokenizer, so that an id is the same token in each. Each member runs as
`backend=` and `quantize=` say; the others become submodules of the first, so that `.to(device)`,
eval mode and Lightning's test loop take them along. One checkpoint is the model itself, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import ListConfig
from torch import Tensor, nn

from seqtasks.decoding.ensemble import AveragedStep, log_mean_prob
from seqtasks.errors import ConfigError
from seqtasks.heads.tagger import CRFTagger
from seqtasks.runtime.build import Inference, load_task


def checkpoint_paths(ckpt: Any) -> list[str]:
    """`ckpt` of predict, evaluate (an ensemble) and average: one path, or a list of them -> the paths."""
    paths = list(ckpt) if isinstance(ckpt, ListConfig | list) else [ckpt]
    if not paths or not all(isinstance(path, str | Path) for path in paths):
        raise ConfigError(f"ckpt={ckpt}: expected a checkpoint path, or a list of them: ckpt=[a,b]")
    return [str(path) for path in paths]


def load_ensemble(paths: list[str], inference: Inference):
    """The task of one checkpoint (or exported directory), or the ensemble of several, each ready
    to run as `inference` says."""
    each = members_inference(inference, paths)
    return ensemble([load_task(path, how) for path, how in zip(paths, each, strict=True)], paths)


def members_inference(inference: Inference, paths: list[str]) -> list[Inference]:
    """How each member runs: as `inference` says, but only the first learns a shortlist. Its search
    runs over that shortlist and hands the vocabulary to the others' steps, so theirs would read
    the training pairs again for nothing."""
    return [inference, *[replace(inference, shortlist=None)] * (len(paths) - 1)]


def ensemble(tasks: list, paths: list[str]):
    """Trained tasks, restored from paths (in that order) -> the first, running all of them (see
    the module docstring); a single task is returned as it is."""
    first, *others = tasks
    if not others:
        return first
    if first.registered_name not in BINDERS:
        raise ConfigError(
            f"ensemble: {paths[0]} holds a '{first.registered_name}' model; ensembles run "
            f"{', '.join(BINDERS)} models: give one ckpt"
        )
    check_alike(tasks, paths)
    BINDERS[first.registered_name](first, tasks, paths)
    first.ensemble_members = nn.ModuleList(others)
    return first


def check_alike(tasks: list, paths: list[str]) -> None:
    """Every member is a model of the first's task with the first's tokenizers."""
    first = tasks[0]
    for task, path in zip(tasks[1:], paths[1:], strict=True):
        if task.registered_name != first.registered_name:
            raise ConfigError(
                f"ensemble: {path} holds a '{task.registered_name}' model and {paths[0]} a "
                f"'{first.registered_name}' one: members must be models of one task"
            )
        for side, tokenizer in first.tokenizers.items():
            if side not in task.tokenizers or task.tokenizers[side].state() != tokenizer.state():
                raise ConfigError(
                    f"ensemble: {path} has another {side} tokenizer than {paths[0]}: members must share their "
                    "tokenizers (trained with the same tokenizer on the same data, or init_from one checkpoint)"
                )


def bind_translation(task, members: list, paths: list[str]) -> None:
    decoders = [member.decoder for member in members]
    # Taken before the first member's are rebound: inside the ensemble it runs its own.
    encodes = [member.encode for member in members]
    steps = [decoder.step for decoder in decoders]
    forwards = [decoder.forward for decoder in decoders]
    shortlisted = [decoder.step_within for decoder in decoders]

    def teacher_forced(target_in: Tensor, states: tuple[Any, ...]) -> tuple[Tensor, None]:
        """target_in (B, T) -> the log of the members' mean probabilities (B, T, V); no attention
        weights, as each member attends over its own encoding."""
        logits = [forward(target_in, state)[0] for forward, state in zip(forwards, states, strict=True)]  # M (B, T, V)
        return log_mean_prob([member_logits.float().log_softmax(-1) for member_logits in logits]), None

    task.encode = lambda source, lengths: tuple(encode(source, lengths) for encode in encodes)
    task.decoder.step = AveragedStep(steps)
    task.decoder.forward = teacher_forced
    task.decoder.step_within = lambda vocabulary: AveragedStep([within(vocabulary) for within in shortlisted])


def bind_classification(task, members: list, paths: list[str]) -> None:
    forwards = [member.forward for member in members]  # the first's own, before it is rebound
    task.forward = lambda tokens, lengths: log_mean_prob(
        [forward(tokens, lengths).float().log_softmax(-1) for forward in forwards]
    )  # (B, C)


def bind_tagging(task, members: list, paths: list[str]) -> None:
    for member, path in zip(members, paths, strict=True):
        if isinstance(member.head, CRFTagger):
            raise ConfigError(
                f"ensemble: {path} is a CRF tagger, whose transitions score whole tag sequences: their "
                "emissions do not average into one model; ensembles take softmax taggers (head=softmax_tagger)"
            )
    emissions = [member.emissions for member in members]  # the first's own, before it is rebound
    task.emissions = lambda batch: log_mean_prob([emit(batch).log_softmax(-1) for emit in emissions])  # (B, T, K)


# The task's registered name -> what rebinds the first member to run them all.
BINDERS: dict[str, Callable[[Any, list, list[str]], None]] = {
    "translation": bind_translation,
    "classification": bind_classification,
    "tagging": bind_tagging,
}
