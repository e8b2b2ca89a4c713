"""What every task shares, so that a task file holds only its model, its loss, its per-example
evaluation records, its metrics and its predictions:

- tokenizers restored from their states, one dict by side (`self.tokenizers["text"]`);
- optimisation from config and the progress-driven LR schedule; non-finite-loss handling;
- evaluation: `evaluate(batch, stage)` returns one record per example, keyed by the example's
  index; at the end of a pass the records of every DDP rank are gathered once
  (`seqtasks.tensors.gather_by_key`), so an example that DDP's padding repeats on two ranks counts
  once, and `score(records, stage)` turns them into the stage's metrics;
- `inference()`: eval mode and no gradients, restored afterwards;
- `predict_lines(lines, options)`: input lines -> output lines, what `seqtasks.predict` writes;
- checkpoint metadata (the task's name and the run config).

Tasks receive plain config (dicts) and build their parts through the registries, and the base
calls `save_hyperparameters()` (which collects the subclasses' arguments too), so a checkpoint's
hyperparameters alone rebuild the model with its tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from torch import Tensor

from seqtasks.configuration.registry import ENCODERS, HEADS, TASKS
from seqtasks.configuration.validation import NonNegativeInt, PositiveFloat
from seqtasks.decoding.base import DecodingStrategy
from seqtasks.encoders.rnn import RecurrentEncoder
from seqtasks.errors import ConfigError, TrainingError
from seqtasks.heads.base import Head
from seqtasks.layer_rates import parameter_groups, unfrozen
from seqtasks.tensors import gather_by_key
from seqtasks.tokenizers.base import Tokenizer

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class PredictOptions:
    """How `seqtasks.predict` asks a task for outputs (conf/predict.yaml has every key)."""

    strategy: DecodingStrategy | None = None  # None: the task's own decoding
    batch_size: int = 64
    num_samples: int = 1  # samples per input (generation, language models)
    generator: torch.Generator | None = None
    prime: str = "\n"  # language models: the text samples continue, without input lines
    length: int = 500  # language models: tokens to generate
    input_format: str = "auto"  # tagging: auto | conllu | text
    source: str = "<input>"  # the input's name, for messages


class Capability(Enum):
    """What a task may do besides training, evaluating and predicting lines. Each is a method of
    SeqTask that fails by default; a task that can do it overrides the method, and callers ask
    `task_class.can(capability)` instead of probing for attributes."""

    SAMPLE = "sample"  # text sampled at a temperature: the sample-evolution callback
    ATTENTION_FIGURES = "attention_figures"  # where the decoder looked, drawn for validation examples
    ATTENTION_MAPS = "predict_attention"  # predict's attention= and attention_images=
    LABELS = "predict_labels"  # texts -> labels: a generation task's agreement classifier


@TASKS.base_class
class SeqTask(L.LightningModule):
    """Base class of the `tasks` registry."""

    monitor: ClassVar[tuple[str, str]] = ("val/loss", "min")  # metric and direction that select checkpoints
    # What `score` returns at validation (without 'val/'), so what checkpoint.monitor may name; a
    # placeholder stands for a family ('f1/<label>': one per label). None: not declared, not checked.
    metrics: ClassVar[tuple[str, ...] | None] = None
    headline: ClassVar[tuple[str, ...]] = ("loss",)  # metrics shown in the progress bar
    head_sort: ClassVar[type] = Head  # the sort of head the task takes (HEADS.build(sort=...))
    not_saved: ClassVar[tuple[str, ...]] = ()  # constructor arguments kept out of the checkpoint (callables)
    needs_input: ClassVar[bool] = True  # predict: False when the task generates without input lines
    output_separator: ClassVar[str] = "\n"  # predict: what goes between two outputs
    strategy: DecodingStrategy | None = None  # tasks that decode set their own (the decoding group)

    def __init__(
        self,
        tokenizers: dict[str, dict],
        optimizer: dict,
        scheduler: dict | None = None,
        nonfinite_loss: Literal["raise", "skip"] = "raise",
        plugins: list[str] | None = None,
        layer_lr_decay: PositiveFloat = 1.0,
        unfreeze_every_epochs: NonNegativeInt = 0,
    ):
        super().__init__()
        # Collects the subclass's constructor arguments too. Tokenizer states (sentencepiece models)
        # are large: run() logs the resolved config to the loggers instead.
        self.save_hyperparameters(ignore=list(self.not_saved), logger=False)
        self.tokenizers: dict[str, Tokenizer] = {side: Tokenizer.from_state(s) for side, s in tokenizers.items()}
        self.optimizer_config = optimizer
        self.scheduler_config = scheduler
        self.nonfinite_loss = nonfinite_loss
        self.layer_lr_decay = layer_lr_decay  # > 1: discriminative learning rates (seqtasks/layer_rates.py)
        self.unfreeze_every_epochs = unfreeze_every_epochs  # > 0: gradual unfreezing (seqtasks/layer_rates.py)
        self._unfrozen_for: int | None = None  # the epoch whose layers train now
        self.skipped_batches = 0
        # bf16 inference (seqtasks/runtime/arithmetic.py): inference() runs its block under autocast
        self.inference_dtype: torch.dtype | None = None
        self.report: dict[str, str] = {}  # non-numeric results for metrics.json (e.g. sacreBLEU signatures)
        self.run_config: dict | None = None  # the whole run's config, set by run(); saved in checkpoints
        self._records: dict[Any, Any] = {}
        self._step_budget: float | None = None  # optimizer steps the trainer will take (inf: no limit)

    # --- what a task defines ---------------------------------------------------------------------
    @classmethod
    def default_monitor(cls, task_config: dict[str, Any]) -> tuple[str, str]:
        """The task's own metric and direction under this task config: `monitor`, unless it depends on the config."""
        return cls.monitor

    @classmethod
    def validation_metrics(cls, task_config: dict[str, Any]) -> tuple[str, ...] | None:
        """The metrics validation logs under this task config: `metrics`, unless they depend on the config."""
        return cls.metrics

    @classmethod
    def data_inputs(cls, data: Any) -> dict[str, Any]:
        """Constructor arguments the builder takes from the datamodule, besides the tokenizers."""
        return {}

    def training_loss(self, batch: Any) -> Tensor:
        """The scalar loss of one training batch."""
        raise NotImplementedError

    def evaluate(self, batch: Any, stage: str) -> dict[Any, Any]:
        """Validation / test: one record per example, keyed by the example's index in its split."""
        raise NotImplementedError

    def score(self, records: list[Any], stage: str) -> dict[str, float]:
        """The stage's metrics (without the 'val/' prefix) from every example's record, in key order."""
        raise NotImplementedError

    def scored(self, stage: str, records: list[Any], scores: dict[str, float]) -> None:
        """After scoring (on every rank): figures and files a task draws from its results."""

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """Input lines (None: no input) -> output lines, in order."""
        raise NotImplementedError

    # --- what a task may define (its Capability) ----------------------------------------------------
    @classmethod
    def can(cls, capability: Capability) -> bool:
        """Whether this task has the capability: it overrides the capability's method."""
        return getattr(cls, capability.value) is not getattr(SeqTask, capability.value)

    def sample(self, temperature: float, length: int, prime: str, generator: torch.Generator) -> str:
        """A text sampled at `temperature` (length and prime where the task takes them)."""
        raise self.cannot("sample text")

    def attention_figures(self, data: Any, count: int) -> dict[str, Figure]:
        """Figures of where the decoder looked for the first `count` validation examples, by name."""
        raise self.cannot("draw attention")

    def predict_attention(self, lines: list[str] | None, options: PredictOptions) -> tuple[list[str], list[Any]]:
        """predict_lines' output and each input line's attention map (source pieces, output pieces, weights)."""
        raise self.cannot("write attention: drop attention=... and attention_images=...")

    def predict_labels(self, texts: list[str]) -> list[str]:
        """The most probable label of each text."""
        raise self.cannot("label texts")

    def cannot(self, what: str) -> ConfigError:
        return ConfigError(f"task '{self.registered_name}' cannot {what}")

    # --- inference -------------------------------------------------------------------------------
    @contextmanager
    def inference(self) -> Iterator[None]:
        """Eval mode (no dropout) and no gradients for the block, under autocast when an
        inference_dtype is set; the previous mode is restored."""
        was_training = self.training
        self.eval()
        autocast = torch.autocast(self.device.type, self.inference_dtype, enabled=self.inference_dtype is not None)
        try:
            with torch.no_grad(), autocast:
                yield
        finally:
            self.train(was_training)

    # --- training ----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        loss = self.training_loss(batch)
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)
        if finite:
            self.log("train/loss", loss, prog_bar=True)
            return loss
        if self.nonfinite_loss == "skip":
            # Returning None makes Lightning skip backward and the optimizer step for this batch.
            self.skipped_batches += 1
            self.log("train/skipped_batches", float(self.skipped_batches))
            return None
        raise TrainingError(
            f"non-finite training loss ({loss.item()}) at global step {self.global_step} "
            f"(epoch {self.current_epoch}, batch {batch_idx}); lower the learning rate or clip gradients "
            "(trainer.gradient_clip_val), or set task.nonfinite_loss=skip to skip such batches"
        )

    # --- evaluation ------------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        self._records.update(self.evaluate(batch, "val"))

    def test_step(self, batch, batch_idx):
        self._records.update(self.evaluate(batch, "test"))

    def on_validation_epoch_start(self) -> None:
        self._records = {}

    def on_test_epoch_start(self) -> None:
        self._records = {}

    def on_validation_epoch_end(self) -> None:
        self.log_scores("val")

    def on_test_epoch_end(self) -> None:
        self.log_scores("test")

    def log_scores(self, stage: str) -> dict[str, float]:
        """Gather every rank's records once, score them, log the metrics (the same on every rank)."""
        if self.trainer.sanity_checking:  # Lightning discards what the sanity check logs
            self._records = {}
            return {}
        gathered = gather_by_key(self._records)
        self._records = {}
        records = [gathered[key] for key in sorted(gathered)]
        scores = self.score(records, stage) if records else {}
        self.log_dict(
            {f"{stage}/{k}": v for k, v in scores.items() if k in self.headline}, prog_bar=True, sync_dist=False
        )
        self.log_dict({f"{stage}/{k}": v for k, v in scores.items() if k not in self.headline}, sync_dist=False)
        self.scored(stage, records, scores)
        return scores

    # --- optimisation ---------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self._step_budget = None
        if self.unfreeze_every_epochs and self.trainer.world_size > 1:
            # DDP fixes the parameters it synchronises when it wraps the model, before any is frozen.
            raise ConfigError("task.unfreeze_every_epochs trains in one process: set it to 0 with several devices")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Per batch, not per epoch: a run resumed inside an epoch does not see the epoch start.
        if self.unfreeze_every_epochs and self._unfrozen_for != self.current_epoch:
            layers = self.encoder_layers()
            for name, param in self.named_parameters():
                param.requires_grad_(unfrozen(name, layers, self.current_epoch, self.unfreeze_every_epochs))
            self._unfrozen_for = self.current_epoch

    def configure_optimizers(self):
        optimizer = instantiate(self.optimizer_config, params=self.parameter_groups(), _convert_="all")
        if not self.scheduler_config:
            return optimizer
        schedule = instantiate(self.scheduler_config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda _: schedule(self.global_step, self.training_progress())
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning's mixed precision refuses to clip for an optimizer that unscales gradients in its
        # own step (fused AdamW), as a loss scaler's gradients would still be scaled when clipped. Only
        # fp16 has a scaler: under bf16 the gradients are true ones, so clip them as fp32 would.
        plugin = self.trainer.precision_plugin
        if gradient_clip_val and isinstance(plugin, MixedPrecision) and plugin.scaler is None:
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, gradient_clip_algorithm)
        else:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def parameter_groups(self) -> list[dict]:
        """What the optimizer updates: every parameter at the base rate, or with layer_lr_decay > 1
        one group per layer, each lower layer at the rate of the one above / layer_lr_decay."""
        if self.layer_lr_decay == 1.0:
            return [{"params": list(self.parameters())}]
        return parameter_groups(
            self.named_parameters(), self.optimizer_config["lr"], self.layer_lr_decay, self.encoder_layers()
        )

    def encoder_layers(self) -> int:
        """The recurrent layers of the task's encoder (seqtasks/layer_rates.py counts depths with them)."""
        encoder = getattr(self, "encoder", None)
        return encoder.num_layers if isinstance(encoder, RecurrentEncoder) else 0

    def training_progress(self) -> float:
        """Share of the run done: the larger of steps/max steps and time/max_time, in [0, 1]."""
        trainer = self._trainer
        # No progress before the first step. (The schedule is first evaluated while the optimizer is
        # built, before a resumed run's loops are restored: asking the trainer for its step budget
        # then would build the training DataLoader too early to take back its place in the epoch.)
        if trainer is None or self.global_step == 0:
            return 0.0
        fractions = [0.0]
        if self._step_budget is None:
            self._step_budget = trainer.estimated_stepping_batches
        if math.isfinite(self._step_budget) and self._step_budget > 0:
            fractions.append(self.global_step / self._step_budget)
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is not None and (remaining := timer.time_remaining("train")) is not None:
            elapsed = timer.time_elapsed("train")
            time_fraction = elapsed / max(elapsed + remaining, 1e-9)
            # Ranks' clocks differ slightly; take rank 0's so every rank uses the same rate.
            fractions.append(trainer.strategy.broadcast(time_fraction) if trainer.world_size > 1 else time_fraction)
        return min(1.0, max(fractions))

    # --- checkpoints ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The run config lets `seqtasks.evaluate` rebuild the data pipeline with a new test file.
        checkpoint["seqtasks"] = {"task": self.registered_name, "config": self.run_config}

    # --- helpers for subclasses -------------------------------------------------------------------
    def build_encoder(self, config: dict, input_size: int, left_to_right: str | None = None) -> RecurrentEncoder:
        """The `encoder` group's network over inputs of input_size. left_to_right: why the task needs
        a unidirectional one (a bidirectional encoder is then refused)."""
        encoder = ENCODERS.build(config, "encoder", input_size=input_size)
        if left_to_right and encoder.bidirectional:
            raise ConfigError(f"{left_to_right}: set encoder.bidirectional=false")
        return encoder

    def build_head(self, config: dict, **sizes: Any) -> Head:
        """The `head` group's head, which must be of the task's sort (head_sort); sizes flow forward."""
        return HEADS.build(config, "head", sort=self.head_sort, user=f"task '{self.registered_name}'", **sizes)

    def strategy_or_default(self, strategy: DecodingStrategy | None) -> DecodingStrategy:
        """The strategy asked for, else the task's own (`task.decoding`)."""
        if strategy is not None:
            return strategy
        if self.strategy is None:
            raise ConfigError(f"task '{self.registered_name}' does not decode")
        return self.strategy

    def use_guidance(self, weight: float) -> None:
        """Decode with this classifier-free guidance weight (`guidance=` of predict and evaluate);
        only a task whose decoder also learned without its input has it (captioning, generation)."""
        raise ConfigError(f"task '{self.registered_name}' has no guidance: drop guidance=...")

    def use_hidden_word_bonus(self, bonus: float | None) -> None:
        """Decode with a second run on the previous word hidden (`hidden_word_bonus=` of predict and
        evaluate); only the tasks with an RNN decoder have it (translation, captioning)."""
        raise ConfigError(f"task '{self.registered_name}' has no hidden-word run: drop hidden_word_bonus=...")

    def require_input(self, lines: list[str] | None, what: str) -> list[str]:
        """The input lines, or a ConfigError saying what the task reads."""
        if lines is None:
            raise ConfigError(f"task '{self.registered_name}' {what}: set input=<file> or input=-")
        return lines
