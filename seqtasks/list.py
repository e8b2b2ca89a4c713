"""`python -m seqtasks.list [plugin ...]`: every registered component (built-in, installed plugins
and the plugin modules or .py files named), one line each.
`python -m seqtasks.list datasets`: the named datasets with their licence, source and citation."""

from __future__ import annotations

import sys

from seqtasks.configuration.compose import exit_with_help
from seqtasks.configuration.plugins import load_plugins
from seqtasks.configuration.registry import ALL_REGISTRIES
from seqtasks.data.catalogue import catalogue_lines
from seqtasks.errors import USER_ERROR, SeqtasksError


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    exit_with_help(arguments, __doc__)
    if arguments[:1] == ["datasets"]:
        print("\n".join(catalogue_lines()))
        return
    try:
        load_plugins(arguments)
    except SeqtasksError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR)
    for registry in ALL_REGISTRIES:
        print(f"{registry.plural}:")
        names = registry.names()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.describe(name)}")


if __name__ == "__main__":
    main()
