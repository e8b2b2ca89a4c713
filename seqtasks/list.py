"""`python -m seqtasks.list`: every registered component (built-in and plugins), one line each.
`python -m seqtasks.list datasets`: the named datasets with their licence, source and citation."""

from __future__ import annotations

import sys

from seqtasks.data.catalogue import catalogue_lines
from seqtasks.plugins import load_plugins
from seqtasks.registry import ALL_REGISTRIES


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["datasets"]:
        print("\n".join(catalogue_lines()))
        return
    load_plugins(arguments)
    for registry in ALL_REGISTRIES:
        print(f"{registry.plural}:")
        names = registry.names()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.describe(name)}")


if __name__ == "__main__":
    main()
