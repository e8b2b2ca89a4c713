"""Training telemetry to every logger: the gradient norm before clipping (total and per layer), the
share of steps clipped, seconds of training, and every `every_n_steps` steps gate saturation and
gradient flow through time of each recurrent module, measured on that step's own inputs; a
warning in the log when gradients explode or vanish for several steps in a row.

Saturation and gradient flow replay the inputs a recurrent module received in the step's forward
pass (a forward hook records them) through reference cells with the same weights, on a few rows,
after the step, so training itself is untouched.

`TrainingThroughput`: samples and tokens per second of training (Lightning's ThroughputMonitor,
training only)."""

from __future__ import annotations

import copy
import logging
import re
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from seqtasks.analysis.figures import gradient_flow_figure
from seqtasks.analysis.gradient_flow import decay_ratio, gradient_norms
from seqtasks.analysis.saturation import gate_saturation
from seqtasks.configuration.validation import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from seqtasks.encoders.reference import ReferenceRNN
from seqtasks.errors import ConfigError
from seqtasks.runtime.dashboards import send_figure, send_scalars

log = logging.getLogger("seqtasks")

# Fused parameters name their layer "_l<n>" (weight_hh_l1_reverse); reference cells "cells.<n>".
LAYER = re.compile(r"(?:_l|cells\.)(\d+)")


def parameter_group(name: str) -> str:
    """'encoder.rnn.weight_hh_l1' -> 'encoder/layer1'; 'head.project.weight' -> 'head'."""
    top = name.split(".", 1)[0]
    match = LAYER.search(name)
    return f"{top}/layer{match.group(1)}" if match else top


def recurrent_modules(task: nn.Module) -> dict[str, nn.Module]:
    """Every fused recurrent module and reference stack of the task, by its path."""
    return {
        name.replace(".", "/"): module
        for name, module in task.named_modules()
        if isinstance(module, nn.RNNBase | ReferenceRNN)
    }


def replay_inputs(module: nn.Module, args: tuple, rows: int, steps: int) -> tuple[Tensor, Any, Tensor | None]:
    """The (x (B, T, I) batch-first, initial state (L*D, B, H) or None, lengths or None) a module
    was called with, cut to the first `rows` rows and `steps` steps."""
    x, state = args[0], args[1] if len(args) > 1 else None
    lengths = args[2] if isinstance(module, ReferenceRNN) and len(args) > 2 else None
    if isinstance(x, PackedSequence):
        x, lengths = pad_packed_sequence(x, batch_first=True)
    elif isinstance(module, nn.RNNBase) and not module.batch_first:
        x = x.transpose(0, 1)
    x = x[:rows, :steps].detach()
    if lengths is not None:
        lengths = lengths[:rows].clamp(max=steps)
    if state is not None:
        state = tuple(s[:, :rows].detach() for s in state) if isinstance(state, tuple) else state[:, :rows].detach()
    return x, state, lengths


class Telemetry(L.Callback):
    def __init__(
        self,
        every_n_steps: NonNegativeInt = 100,
        rows: PositiveInt = 8,
        steps: PositiveInt = 64,
        explode_norm: PositiveFloat = 100.0,
        vanish_norm: NonNegativeFloat = 1e-6,
        patience: PositiveInt = 5,
        directory: str | None = None,
    ):
        # Each value's type and range: seqtasks/runtime/run_options.py, before the run starts.
        if not vanish_norm < explode_norm:
            raise ConfigError(f"telemetry: expected vanish_norm < explode_norm, got {vanish_norm} and {explode_norm}")
        self.every_n_steps, self.rows, self.steps = every_n_steps, rows, steps
        self.explode_norm, self.vanish_norm, self.patience = explode_norm, vanish_norm, patience
        self.directory = Path(directory) if directory else None
        self.steps_clipped = self.steps_seen = 0
        self.streak = {"explode": 0, "vanish": 0}
        self.train_seconds = 0.0
        self._clock: float | None = None
        self._inputs: dict[str, tuple] = {}
        self._hooks: list = []

    # --- time ----------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, task, batch, batch_idx) -> None:
        self._clock = time.perf_counter()
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._record_inputs(task)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if self._clock is not None:
            self.train_seconds += time.perf_counter() - self._clock
        task.log("time/train_seconds", self.train_seconds)
        if self._hooks:
            for hook in self._hooks:
                hook.remove()
            self._hooks = []
            step = trainer.fit_loop.epoch_loop._batches_that_stepped  # where Lightning logs this batch's rows
            # The replica's layers draw initial weights from the global generator: fork it, so that
            # watching a run leaves its dropout masks and shuffling, and so its results, as they were.
            with torch.random.fork_rng(devices=[task.device] if task.device.type == "cuda" else []):
                measured = self._measure(trainer, task, step)
            send_scalars(trainer.loggers, measured, step)

    # --- gradients -----------------------------------------------------------------------------
    def on_before_optimizer_step(self, trainer, task, optimizer) -> None:
        # Lightning calls this before it clips, so these are the raw gradients.
        groups: dict[str, list[Tensor]] = {}
        for name, param in task.named_parameters():
            if param.grad is not None:
                groups.setdefault(parameter_group(name), []).append(param.grad.detach().float().norm())
        if not groups:
            return
        norms = {group: torch.stack(parts).norm() for group, parts in groups.items()}
        total = float(torch.stack(list(norms.values())).norm())
        for group, norm in norms.items():
            task.log(f"grad/norm/{group}", norm)
        task.log("grad/norm", total)
        self.steps_seen += 1
        self.steps_clipped += self.clipped(trainer, task, total)
        task.log("grad/clipped_share", self.steps_clipped / self.steps_seen)
        self.watch(total, trainer.global_step)

    @staticmethod
    def clipped(trainer, task, total: float) -> bool:
        """Whether Lightning's clipping (trainer.gradient_clip_val) changes this step's gradients."""
        limit = trainer.gradient_clip_val
        if not limit:
            return False
        if trainer.gradient_clip_algorithm == "value":
            return any(bool((p.grad.abs() > limit).any()) for p in task.parameters() if p.grad is not None)
        return total > limit

    def watch(self, total: float, step: int) -> None:
        """Warn once per streak of `patience` steps above explode_norm (or non-finite) or below vanish_norm."""
        for kind, bad in (("explode", not total < self.explode_norm), ("vanish", total < self.vanish_norm)):
            self.streak[kind] = self.streak[kind] + 1 if bad else 0
            if self.streak[kind] == self.patience:
                limit = f"above {self.explode_norm:g}" if kind == "explode" else f"below {self.vanish_norm:g}"
                log.warning(
                    "step %d: the gradient norm has been %s for %d steps (now %.3g): gradients %s; consider %s",
                    step,
                    limit,
                    self.patience,
                    total,
                    "explode" if kind == "explode" else "vanish",
                    "a lower learning rate or trainer.gradient_clip_val"
                    if kind == "explode"
                    else "gated cells (lstm, gru), orthogonal init or a higher learning rate",
                )

    # --- saturation and gradient flow ----------------------------------------------------------
    def _record_inputs(self, task: nn.Module) -> None:
        self._inputs = {}
        for name, module in recurrent_modules(task).items():

            def record(module, args, name=name):
                self._inputs.setdefault(name, args)  # the first call of the step (decoders may step)

            self._hooks.append(module.register_forward_pre_hook(record))

    @torch.no_grad()
    def _measure(self, trainer, task, step: int) -> dict[str, float]:
        """{gates/<module>/<layer>/<gate>_saturated, gradflow/<module>/<layer>/ratio_<distance>: value}."""
        measured: dict[str, float] = {}
        generator = torch.Generator().manual_seed(0)
        for name, args in self._inputs.items():
            module = dict(recurrent_modules(task))[name]
            x, state, lengths = replay_inputs(module, args, self.rows, self.steps)
            if x.shape[1] < 2:
                continue  # a one-step call (a decoder's step): no time to flow through
            # A copy: the replay must not touch the model's own parameters or their gradients.
            rnn = copy.deepcopy(module) if isinstance(module, ReferenceRNN) else ReferenceRNN.like(module)
            rnn = rnn.float().requires_grad_(False).eval()
            trace = rnn.trace(x.float(), state if state is None else _float(state), lengths)
            for key, share in gate_saturation(rnn, trace, lengths).items():
                measured[f"gates/{name}/{key}_saturated"] = float(share)
            # dL_T/dh_k for L_T a fixed random direction of the top layer's last state: the shape of
            # the curve is what the recurrence does to any gradient arriving at step T.
            direction = torch.randn(rnn.cells[-1].hidden_size, generator=generator).to(x.device)
            # Over the steps every row has, so no padding sits between a step and the loss.
            real = x[:, : int(lengths.min())] if lengths is not None else x
            if real.shape[1] < 2:
                continue
            norms = gradient_norms(rnn, real.float(), lambda h, u=direction: (h @ u).sum())  # (L, T)
            for layer in range(norms.shape[0]):
                for distance in (10, 50):
                    if distance < norms.shape[1]:
                        ratio = decay_ratio(norms, distance)[layer]
                        measured[f"gradflow/{name}/layer{layer}/ratio_{distance}"] = float(ratio)
            self._draw(trainer, name, norms, step)
        self._inputs = {}
        return measured

    @rank_zero_only
    def _draw(self, trainer, name: str, norms: Tensor, step: int) -> None:
        figure = gradient_flow_figure(
            {f"layer {layer}": norms[layer].cpu() for layer in range(norms.shape[0])},
            f"{name}: ||dL_T/dh_k|| at step {step}",
        )
        tag = f"gradflow/{name}"
        path = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"gradient_flow_{name.replace('/', '_')}.png"
            figure.savefig(path, dpi=90)
        send_figure(trainer.loggers, tag, figure, step, path)

    # --- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self.train_seconds, "clipped": self.steps_clipped, "seen": self.steps_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_seconds = state.get("train_seconds", 0.0)
        self.steps_clipped, self.steps_seen = state.get("clipped", 0), state.get("seen", 0)


class TrainingThroughput(ThroughputMonitor):
    """Lightning's ThroughputMonitor (train/samples_per_sec, train/items_per_sec, ...), which logs
    validation and test throughput too: with the evaluation loop's own batch count as the step
    (1, 2, 3 in the middle of a run at step 20 000), and only when that count is a multiple of
    trainer.log_every_n_steps or the run is stopping (Ctrl-C, max_time, early stopping). Its
    `validate/*` and `test/*` rows made a log's columns, and a step column that goes back, depend on
    the number of validation batches and on how the run ended; this logs training only.
    Validation batches are still timed, so that their time is not counted as training's."""

    def _compute(self, trainer: L.Trainer, iter_num: int | None = None) -> None:
        if trainer.state.stage == RunningStage.TRAINING:
            super()._compute(trainer, iter_num)


def _float(state):
    return tuple(s.float() for s in state) if isinstance(state, tuple) else state.float()
