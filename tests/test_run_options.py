"""The run's own options (seed, checkpointing, early stopping, EMA, samples, telemetry, ...) are
checked before a run is accepted: a wrong value fails naming the key and what it takes, and the
run directory stays as it was."""

from __future__ import annotations

import pytest
from conftest import TINY_LM, seqtasks

from seqtasks.errors import ConfigError
from seqtasks.runtime.build import container
from seqtasks.runtime.run_options import check_run_options


@pytest.mark.parametrize(
    "override, message",
    [
        # Each was accepted before: some read as another value (0 meaning off, 'no' meaning true,
        # a decay of 1 freezing the saved weights at their initial values), some failing mid-run.
        ("ema.decay=1.0", r"ema.decay=1.0: expected a number in \(0, 1\) or null"),
        ("ema=null", r"ema=None: expected the group's options; ema.decay=null turns it off"),
        ("early_stopping.patience=0", r"early_stopping.patience=0: expected an integer >= 1 or null"),
        ("seed=-1", r"seed=-1: expected an integer in \[0, 4294967295\] or null"),
        ("keep_freed_memory=no", r"keep_freed_memory='no': expected true or false"),
        ("resume=true", r"resume=True: expected a string or null"),
        ("pretrain.overrides=experiment", r"pretrain.overrides='experiment': expected a list of a string or null"),
        ("init_from.parts=[encoder]", r"init_from.parts chooses modules of the checkpoint a run starts from"),
        (
            "init_from.checkpoint=no/such.ckpt",
            r"init_from.checkpoint=no/such.ckpt: no checkpoint file or model directory",
        ),
        ("samples.temperatures=[-1.0]", r"samples.temperatures=\[-1.0\]: expected a list of a number > 0"),
        ("samples.length=-5", r"samples.length=-5: expected an integer >= 1"),
        ("+samples.foo=1", r"'samples' has no option 'samples.foo'; valid options: every_n_steps, temperatures"),
        ("telemetry.vanish_norm=500", r"telemetry: expected vanish_norm < explode_norm, got 500 and 100.0"),
        ("attention_images.sentences=1.5", r"attention_images.sentences=1.5: expected an integer >= 0"),
        ("checkpoint.save_top_k=2", r"checkpoint.save_top_k=2: a run keeps its best checkpoint \(1: "),
        ("checkpoint.every_n_steps=-5", r"checkpoint.every_n_steps=-5: expected an integer >= 1 or null"),
    ],
)
def test_a_run_option_it_cannot_take_is_refused_naming_it(compose_config, override, message):
    cfg = container(compose_config(["task=language_model", override]))
    with pytest.raises(ConfigError, match=message):
        check_run_options(cfg)


def test_the_defaults_and_their_off_values_are_accepted(compose_config):
    for overrides in (
        [],
        ["ema.decay=0.999", "early_stopping.patience=3", "seed=null", "samples.every_n_steps=0"],
        [f"init_from.checkpoint={__file__}", "init_from.parts=[encoder]", "telemetry.every_n_steps=0"],
    ):
        check_run_options(container(compose_config(["task=language_model", *overrides])))


def test_a_refused_resume_leaves_the_run_directory_as_it_was(tmp_path, tiny_text_file):
    run = [*TINY_LM, "data=text_file", f"data.path={tiny_text_file}", "logger=[]", f"hydra.run.dir={tmp_path}"]
    seqtasks(*run)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    # Lightning's own check of a trainer option, and a run option's.
    for wrong, named in (("trainer.max_time=abc", "Timer(duration='abc')"), ("ema.decay=1.5", "ema.decay=1.5")):
        result = seqtasks(*run, "resume=auto", wrong, check=False)
        assert result.returncode == 2 and named in result.stderr
        assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
