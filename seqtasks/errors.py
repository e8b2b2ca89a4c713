"""The project's error types: every user-facing failure is one of these, with a message that says
what was wrong, where (file, line, byte offset, config key) and what was expected."""

USER_ERROR = 2  # the exit code of every mistake in a command line, a config or the data


class SeqtasksError(Exception):
    """Base class of all errors seqtasks raises on purpose."""


class ConfigError(SeqtasksError):
    """A config names an unknown component or option, or combines options that cannot work."""


class DataError(SeqtasksError):
    """An input file is missing, empty or malformed."""

    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class TrainingError(SeqtasksError):
    """Training cannot go on (for example a non-finite loss)."""


class Interrupted(SeqtasksError):
    """The run was interrupted (Ctrl-C) and saved where it stopped."""

    exit_code = 130  # the shell's code for a process ended by SIGINT
