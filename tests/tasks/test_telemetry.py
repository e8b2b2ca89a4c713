"""Training telemetry: gradient norms before clipping, clipped share, gate saturation and gradient
flow per recurrent module, read back with TensorBoard's own event reader."""

import logging

import pytest
import torch
from conftest import TINY_LM, TINY_TEXT, train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_classification_task import NAMES
from test_translation_task import TINY_TRANSLATION, reversal_pairs, write_tsv

from seqtasks.analysis.saturation import gate_saturation
from seqtasks.callbacks.telemetry import Telemetry, parameter_group
from seqtasks.configuration.registry import check_arguments
from seqtasks.encoders.cells import GRUCell, LSTMCell
from seqtasks.encoders.reference import ReferenceRNN
from seqtasks.errors import ConfigError
from seqtasks.runtime.checkpoint import load_checkpoint


def tensorboard_events(run_dir) -> EventAccumulator:
    (events,) = {path.parent for path in (run_dir / "tensorboard").rglob("events.out.tfevents*")}
    return EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0, "tensors": 0}).Reload()


@pytest.mark.slow
def test_a_translation_run_logs_attention_gradients_and_gate_saturation(tmp_path):
    pairs = write_tsv(tmp_path / "pairs.tsv", reversal_pairs(200, 0))
    overrides = [*TINY_TRANSLATION, f"data.train={pairs}", f"data.val={pairs}", "trainer.max_epochs=2"]
    train(
        *overrides,
        "logger=tensorboard",
        "telemetry.every_n_steps=2",
        "trainer.log_every_n_steps=1",
        run_dir=tmp_path / "run",
    )
    events = tensorboard_events(tmp_path / "run")
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    assert {"grad/norm", "grad/clipped_share", "time/train_seconds", "grad/norm/encoder/layer0"} <= scalars
    assert "gates/encoder/rnn/layer0/update_saturated" in scalars  # the BiGRU encoder
    assert "gates/decoder/rnn/rnn/layer0/update_saturated" in scalars  # the decoder GRU
    assert "gradflow/encoder/rnn/layer0/ratio_10" in scalars
    assert {"attention/sentence_0", "gradflow/encoder/rnn"} <= images
    seconds = [event.value for event in events.Scalars("time/train_seconds")]
    assert seconds == sorted(seconds) and seconds[-1] > 0
    assert (tmp_path / "run" / "gradient_flow_encoder_rnn.png").is_file()


@pytest.mark.slow
def test_a_classification_run_logs_its_confusion_matrix_and_a_language_model_its_samples(tmp_path):
    folder = tmp_path / "names" / "by_language"
    folder.mkdir(parents=True)
    for language, names in NAMES.items():
        (folder / f"{language}.txt").write_text("\n".join(names) + "\n")
    train(
        "experiment=names_classify",
        f"data.root={tmp_path}",
        "encoder.hidden_size=8",
        "trainer.max_steps=4",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
        "logger=tensorboard",
        run_dir=tmp_path / "names_run",
    )
    assert "test/confusion_matrix" in tensorboard_events(tmp_path / "names_run").Tags()["images"]
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    train("data=text_file", f"data.path={text}", *TINY_LM, "logger=tensorboard", run_dir=tmp_path / "lm_run")
    tensors = tensorboard_events(tmp_path / "lm_run").Tags()["tensors"]  # add_text is stored as tensors
    assert any(tag.startswith("samples/temperature_0.5") for tag in tensors)


def test_telemetry_leaves_the_run_as_it_was(tmp_path):
    # Dropout draws from the global generator every step: telemetry's replicas must not.
    text = tmp_path / "input.txt"
    text.write_text(TINY_TEXT)
    common = [*TINY_LM, "data=text_file", f"data.path={text}", "encoder.dropout=0.3", "encoder.num_layers=2"]
    runs = {}
    for every in (0, 2):
        run_dir = tmp_path / f"every_{every}"
        train(*common, f"telemetry.every_n_steps={every}", "samples.every_n_steps=0", "logger=[]", run_dir=run_dir)
        runs[every] = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    for name, weights in runs[0].items():
        assert torch.equal(weights, runs[2][name]), name


def test_parameters_are_grouped_by_module_and_layer():
    assert parameter_group("encoder.rnn.weight_hh_l1_reverse") == "encoder/layer1"
    assert parameter_group("encoder.rnn.cells.0.weight_ih") == "encoder/layer0"
    assert parameter_group("head.project.weight") == "head"


def test_saturation_counts_gates_beyond_the_thresholds():
    rnn = ReferenceRNN(LSTMCell, input_size=2, hidden_size=3)
    with torch.no_grad():
        for p in rnn.parameters():
            p.zero_()
        rnn.cells[0].bias_ih[:3] = 10.0  # input gate sigmoid(10) > 0.95: always saturated
    shares = gate_saturation(rnn, rnn.trace(torch.randn(2, 5, 2)))
    assert shares == {"layer0/input": 1.0, "layer0/forget": 0.0, "layer0/output": 0.0}
    gru = ReferenceRNN(GRUCell, input_size=2, hidden_size=3, num_layers=2)
    assert set(gate_saturation(gru, gru.trace(torch.randn(2, 5, 2)))) == {
        f"layer{layer}/{gate}" for layer in (0, 1) for gate in ("reset", "update")
    }


def test_padded_steps_do_not_count_towards_saturation():
    rnn = ReferenceRNN(GRUCell, input_size=1, hidden_size=1)
    with torch.no_grad():
        for p in rnn.parameters():
            p.zero_()
        rnn.cells[0].weight_ih[:2] = 20.0  # gates saturate where x = 1 only
    x = torch.tensor([[[0.0], [0.0], [1.0], [1.0]]])  # (1, 4, 1): the last two steps are padding
    lengths = torch.tensor([2])
    assert gate_saturation(rnn, rnn.trace(x, lengths=lengths), lengths) == {"layer0/reset": 0.0, "layer0/update": 0.0}


def test_exploding_gradients_warn_once_per_streak(caplog):
    telemetry = Telemetry(explode_norm=10.0, patience=3)
    with caplog.at_level(logging.WARNING, logger="seqtasks"):
        for step, norm in enumerate([50, 50, 50, 50, 1, 50, float("nan"), 50]):
            telemetry.watch(norm, step)
    warnings = [r.getMessage() for r in caplog.records if "explode" in r.getMessage()]
    assert len(warnings) == 2 and warnings[0].startswith("step 2:") and warnings[1].startswith("step 7:")


def test_bad_telemetry_settings_name_the_key():
    with pytest.raises(ConfigError, match="telemetry.patience=0: expected an integer >= 1"):
        check_arguments(Telemetry, {"patience": 0}, "telemetry")  # what the run checks before it starts
    with pytest.raises(ConfigError, match="vanish_norm < explode_norm"):
        Telemetry(vanish_norm=5.0, explode_norm=1.0)
