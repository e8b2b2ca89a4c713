import subprocess
import sys

import pytest

from seqtasks.configuration.registry import ALL_REGISTRIES, ENCODERS, Registry
from seqtasks.errors import ConfigError


def test_register_build_and_describe():
    things = Registry("thing")

    @things.register("box")
    class Box:
        """A box of a given size."""

        def __init__(self, size: int, colour: str = "red"):
            self.size, self.colour = size, colour

    box = things.build({"name": "box", "colour": "blue"}, size=3)
    assert (box.size, box.colour) == (3, "blue")
    assert things.names() == ["box"] and "box" in things
    assert things.describe("box") == "A box of a given size."


def test_duplicate_name_fails_at_registration():
    things = Registry("thing")
    things.register("a")(type("A", (), {}))
    with pytest.raises(ConfigError, match="'a' is registered twice"):
        things.register("a")(type("B", (), {}))


def test_unknown_name_lists_choices_and_closest_match():
    with pytest.raises(ConfigError) as error:
        ENCODERS.build({"name": "lstmm"}, input_size=4)
    message = str(error.value)
    assert "unknown encoder 'lstmm'" in message
    choices = message.split("choose from: ")[1].split(" (")[0].split(", ")
    assert {"gru", "lstm", "rnn"} <= set(choices) and choices == sorted(choices)
    assert "did you mean 'lstm'?" in message


def test_unknown_option_follows_kwargs_up_the_hierarchy():
    # LSTMEncoder takes **options and passes them to RecurrentEncoder: both levels' names count.
    ENCODERS.build({"name": "lstm", "hidden_size": 4, "forget_bias": 2.0}, input_size=3)
    with pytest.raises(ConfigError, match="has no option 'hiden_size'.*did you mean 'hidden_size'"):
        ENCODERS.build({"name": "lstm", "hiden_size": 4}, input_size=3)


def test_missing_required_option_and_missing_name():
    with pytest.raises(ConfigError, match="needs option"):
        ENCODERS.build({"name": "gru"})
    with pytest.raises(ConfigError, match="no 'name'"):
        ENCODERS.build({"hidden_size": 3}, input_size=3)


def test_every_registry_is_filled_and_described():
    for registry in ALL_REGISTRIES:
        assert registry.names(), registry.kind
        for name in registry.names():
            assert registry.describe(name), f"{registry.kind} '{name}' has no docstring"


def test_list_command_prints_every_component():
    out = subprocess.run([sys.executable, "-m", "seqtasks.list"], capture_output=True, text=True, check=True).stdout
    for registry in ALL_REGISTRIES:
        for name in registry.names():
            assert f"  {name} " in out
    assert "Elman RNN" in out
