"""Image captioning, one-to-many: an image in, a sentence out.

    image -> image encoder (a CNN from scratch, or precomputed features) -> grid (B, R, D)
    grid mean -> bridge -> decoder's initial state       (Show and Tell: head=plain_decoder)
    [+ attention over the grid at every step]           (Show, Attend and Tell: head=attention_decoder)
    caption tokens -> RNN decoder -> next-word logits -> label-smoothed CE

The decoder, its loss, its search through the `decoding` registry and the attention replay are
translation's (`tasks/encoder_decoder.py`): the image's grid plays the source sentence's memory,
and its mean the encoder's final state (Vinyals et al. 2015, https://arxiv.org/abs/1411.4555; Xu et
al. 2015, https://arxiv.org/abs/1502.03044, who also start the LSTM from the mean annotation).

Validation decodes greedily (task.val_decoding=test: like the test), test with the run's strategy
(beam 5 by default); both report sacreBLEU and chrF against every caption of an image and, with
`attributes=shapes`, attribute accuracy: the share of images whose caption names exactly their
objects with colour and size (`seqtasks/data/shapes.py` parses both), overall and on the images
holding a colour-shape pair that no training caption named (`attr_acc_heldout`). It counts only
the images whose first caption the grammar reads (one naming no shape says nothing to check), and
then selects checkpoints; captions it cannot read at all are refused before training (set attributes=null:
BLEU then selects).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor, nn

from seqtasks.analysis.figures import image_attention_figure
from seqtasks.configuration.registry import IMAGE_ENCODERS, TASKS
from seqtasks.configuration.validation import NonNegativeFloat, PositiveInt, Rate
from seqtasks.data import shapes
from seqtasks.data.captions import CaptionBatch, resolve
from seqtasks.data.images import load_input, stack_inputs
from seqtasks.decoding.base import DecodingStrategy, StepFunction
from seqtasks.decoding.greedy import Greedy
from seqtasks.decoding.guidance import GuidedStep, checked_weight
from seqtasks.errors import ConfigError
from seqtasks.metrics import attribute_scores, corpus_scores, loss_scores
from seqtasks.tasks.base import PredictOptions
from seqtasks.tasks.encoder_decoder import EncoderDecoderTask, Hypotheses
from seqtasks.tensors import lengths_mask

# What validation also logs with attributes=shapes (seqtasks.metrics.attribute_scores).
ATTRIBUTE_METRICS = ("attr_acc", "attr_acc_heldout", "heldout_share")

# What the image encoder reads when the task is built without data (the data's input_spec()
# otherwise): RGB images at data=captions' default side.
IMAGES = {"kind": "image", "size": 3, "image_size": 64}


def without_image(grid: Tensor, rows: Tensor | None = None) -> Tensor:
    """What the decoder reads for "no image", on every row or where rows (B,) is true: an all-zero
    grid (B, R, D). Image dropout trains on it and guidance decodes from it, so they must agree."""
    if rows is None:
        return torch.zeros_like(grid)
    return grid.masked_fill(rows[:, None, None], 0.0)


@TASKS.register("captioning")
class CaptioningTask(EncoderDecoderTask):
    """Image captioning: an image encoder's grid, an RNN decoder started from its mean, attending over it."""

    monitor = ("val/bleu", "max")
    metrics = ("bleu", "chrf", "loss", "ppl")
    headline = ("bleu", "attr_acc")
    target_side = "text"

    def __init__(
        self,
        image_encoder: dict,
        head: dict,
        decoding: dict,
        dropout: Rate = 0.0,
        max_length: PositiveInt = 30,
        attributes: Literal["shapes"] | None = None,
        image_dropout: Rate = 0.0,
        guidance: NonNegativeFloat = 1.0,
        inputs: dict | None = None,
        seen_combinations: list[str] | None = None,
        **shared: Any,
    ):
        super().__init__(decoding=decoding, **shared)
        self.image_dropout = image_dropout
        self.use_guidance(guidance, key="task.guidance")
        self.inputs = dict(inputs or IMAGES)
        self.image_encoder = IMAGE_ENCODERS.build(image_encoder, "image_encoder", input_size=self.inputs["size"])
        reads, given = self.image_encoder.reads, self.inputs["kind"]
        if reads != given:
            fits = "cnn" if given == "image" else "precomputed"
            raise ConfigError(
                f"image_encoder={image_encoder['name']} reads {reads} inputs, but the data gives {given} inputs: "
                f"choose image_encoder={fits}"
            )
        self.dropout = nn.Dropout(dropout)
        self.decoder = self.build_decoder(head, self.image_encoder.output_size)
        self.max_length = max_length
        self.attributes = attributes
        self.seen_combinations = set(seen_combinations or ())

    @classmethod
    def default_monitor(cls, task_config: dict[str, Any]) -> tuple[str, str]:
        # Where attributes are scored, what a caption says, not its wording (val/bleu picked worse checkpoints).
        return ("val/attr_acc", "max") if task_config.get("attributes") else cls.monitor

    @classmethod
    def validation_metrics(cls, task_config: dict[str, Any]) -> tuple[str, ...]:
        return cls.metrics + (ATTRIBUTE_METRICS if task_config.get("attributes") else ())

    @classmethod
    def data_inputs(cls, data: Any) -> dict[str, Any]:
        """What the image encoder reads, and the colour-shape pairs the training captions name (by
        the shapes grammar; none for other captions): the rest are held out."""
        captions = (caption for per_image in data.read("train").captions for caption in per_image)
        seen = {f"{colour} {shape}" for caption in captions for _, colour, shape in shapes.parse(caption) if colour}
        return {"inputs": data.input_spec(), "seen_combinations": sorted(seen)}

    # --- model -------------------------------------------------------------------------------------
    def image_grid(self, inputs: Tensor, regions: Tensor | None) -> tuple[Tensor, Tensor]:
        """inputs (see CaptionBatch), regions (B,) or None -> grid (B, R, D), mask (B, R) true on regions."""
        grid = self.dropout(self.image_encoder(inputs))  # (B, R, D)
        if regions is None:
            return grid, grid.new_ones(grid.shape[:2], dtype=torch.bool)  # every cell of the grid
        return grid, lengths_mask(regions.to(grid.device), grid.shape[1])

    def start(self, grid: Tensor, mask: Tensor) -> dict[str, Any]:
        """grid (B, R, D), mask (B, R) -> the decoder's initial state, started from the grid's mean."""
        mean = (grid * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, D)
        return self.decoder.initial_state(grid, mask, mean)

    def encode(self, inputs: Tensor, regions: Tensor | None) -> dict[str, Any]:
        """inputs, regions -> the decoder's initial state on the image."""
        return self.start(*self.image_grid(inputs, regions))

    def search_state(self, grid: Tensor, mask: Tensor, state: dict[str, Any] | None = None) -> Any:
        """What decoding_step steps from: the state on the image (`state`, when already started),
        and with guidance also the state on no image (as image_dropout trained it)."""
        state = state or self.start(grid, mask)
        if self.guidance == 1.0:
            return state
        return {"input": state, "none": self.start(without_image(grid), mask)}

    def use_guidance(self, weight: float, key: str = "guidance") -> None:
        no_prior = (
            "weighs the decoder against its captions' prior, which it learns only from captions whose image "
            "it does not see: train with task.image_dropout > 0 (e.g. 0.15)"
        )
        self.guidance = checked_weight(weight, key, no_prior if self.image_dropout == 0.0 else None)

    @property
    def base_step(self) -> StepFunction:
        if self.guidance == 1.0:
            return self.decoder.step
        return GuidedStep(self.decoder.step, self.guidance)

    def training_loss(self, batch: CaptionBatch) -> Tensor:
        grid, mask = self.image_grid(batch.inputs, batch.regions)
        if self.training and self.image_dropout > 0:
            # Some captions without their image: the decoder also learns the
            # captions' prior, which guidance (task.guidance) extrapolates away from when decoding.
            hidden = torch.rand(grid.shape[0], device=grid.device) < self.image_dropout  # (B,)
            grid = without_image(grid, hidden)
        state = self.start(grid, mask)
        return self.token_nll(state, batch.target_in, batch.target_out, self.label_smoothing).sum() / batch.num_tokens

    def evaluate(self, batch: CaptionBatch, stage: str) -> dict[int, tuple[str, list[str], float, int]]:
        """index -> (caption, references, summed NLL of the first reference, its tokens).
        Decoded as stage_strategy says: validation greedily (fast) unless task.val_decoding=test,
        test with the run's strategy."""
        grid, mask = self.image_grid(batch.inputs, batch.regions)
        state = self.start(grid, mask)
        nll = self.token_nll(state, batch.target_in, batch.target_out).sum(1).tolist()  # (B,)
        tokens = (batch.target_out != self.pad_id).sum(1).tolist()
        strategy = self.stage_strategy(stage)
        state = self.search_state(grid, mask, state)
        captions = [best[0][0] for best in self.caption_state(state, len(batch), strategy, n=1)]
        rows = zip(captions, batch.references, nll, tokens, strict=True)
        return dict(zip(batch.indices, rows, strict=True))

    def score(self, records: list[tuple[str, list[str], float, int]], stage: str) -> dict[str, float]:
        captions, references, nll, tokens = zip(*records, strict=True)
        scores, signatures = corpus_scores(captions, references)
        self.report.update({f"{stage}/{k}_signature": v for k, v in signatures.items()})
        if self.attributes == "shapes":
            scores.update(self.attribute_accuracy(captions, references))
        rank_zero_info(f"{stage} " + " ".join(f"{k} {v:.4g}" for k, v in scores.items()))
        return {**scores, **loss_scores(sum(nll), sum(tokens))}

    def attribute_accuracy(self, captions: tuple[str, ...], references: tuple[list[str], ...]) -> dict[str, float]:
        """Attribute accuracy (ATTRIBUTE_METRICS) over the images whose first caption names a shape of
        the grammar: {} without any. (Counted, an image of other words would score right whenever
        its decoded caption named no shape either.)"""
        pairs = [
            (caption, truth)
            for caption, refs in zip(captions, references, strict=True)
            if (truth := shapes.parse(refs[0]))
        ]
        if not pairs:
            return {}
        decoded, truths = zip(*pairs, strict=True)
        held_out = [any(f"{c} {s}" not in self.seen_combinations for _, c, s in truth) for truth in truths]
        return attribute_scores(decoded, truths, shapes.parse, held_out)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # Refused before training starts: attribute accuracy would score nothing here (so not be
        # logged), yet by default it selects the checkpoints.
        if stage != "fit" or self.attributes != "shapes":
            return
        data = self.trainer.datamodule
        if not any(shapes.parse(refs[0]) for refs in data.read("val").captions):
            raise ConfigError(
                f"task.attributes=shapes: no validation caption ({data.describe('val')}) names a shape of the "
                "shapes grammar (seqtasks/data/shapes.py), so attribute accuracy has nothing to score: "
                "set task.attributes=null (checkpoints are then selected by val/bleu)"
            )

    # --- decoding ----------------------------------------------------------------------------------
    def caption_state(
        self, state: dict[str, Any], batch: int, strategy: DecodingStrategy, n: int | None = None
    ) -> list[Hypotheses]:
        """The search state of `batch` images (search_state) -> per image its n (default: the
        strategy's n_best) captions, best first, with scores."""
        max_len = torch.full((batch,), self.max_length, dtype=torch.long, device=self.device)
        return self.detokenise(*self.search_from(state, max_len, strategy, n))

    def caption_arrays(
        self, arrays: list, strategy: DecodingStrategy | None = None, batch_size: int = 64
    ) -> list[Hypotheses]:
        """Decoded inputs (`seqtasks.data.images.load_input`) -> per input its hypotheses, in batches."""
        strategy = self.strategy_or_default(strategy)
        results: list[Hypotheses] = []
        with self.inference():
            for start in range(0, len(arrays), batch_size):
                inputs, regions = stack_inputs(arrays[start : start + batch_size])
                state = self.search_state(*self.image_grid(inputs.to(self.device), regions))
                results += self.caption_state(state, len(inputs), strategy)
        return results

    def predict_lines(self, lines: list[str] | None, options: PredictOptions) -> list[str]:
        """One image path per line (relative to the input file's directory) -> its caption; an
        empty line gives an empty line. With n_best N > 1, Moses n-best lines instead."""
        lines = self.require_input(lines, "captions images: one image path per line")
        strategy = self.strategy_or_default(options.strategy)
        directory = Path.cwd() if options.source == "<stdin>" else Path(options.source).parent
        wanted = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
        size = self.inputs["image_size"]
        arrays = [load_input(resolve(path, directory), size, options.source, number) for number, path in wanted]
        found = iter(self.caption_arrays(arrays, strategy, options.batch_size) if arrays else [])
        n_best = [next(found) if line.strip() else [("", 0.0)] for line in lines]
        return self.output_lines(n_best, strategy)

    def attention_figures(self, data: Any, count: int) -> dict[str, Figure]:
        """The first `count` validation images with where the decoder looked for each word of its
        greedy caption (the same images every time, so the figures compare across validations)."""
        if self.decoder.attention is None or self.inputs["kind"] != "image":
            return {}  # no attention, or no picture to lay it over
        images = data.read("val").inputs[:count]
        with self.inference():
            inputs, _ = stack_inputs(images)
            grid, mask = self.image_grid(inputs.to(self.device), None)
            max_len = torch.full((len(images),), self.max_length, dtype=torch.long, device=self.device)
            state = self.start(grid, mask)
            tokens, _ = self.search_from(self.search_state(grid, mask, state), max_len, Greedy(), n=1)  # (B, 1, T)
            # Where the decoder looked on the image (a guided caption's other branch sees none).
            outputs, weights = self.replay_attention(state, tokens[:, 0], max_len)  # (B, T', R)
        words = self.target_tokenizer.vocab.tokens
        return {
            f"image_{i}": image_attention_figure(image, [words[t] for t in ids], weights[i, : len(ids)])
            for i, (image, ids) in enumerate(zip(images, outputs, strict=True))
        }
