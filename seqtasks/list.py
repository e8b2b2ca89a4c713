"""`python -m seqtasks.list`: every registered component (built-in and plugins), one line each."""

from __future__ import annotations

import sys

from seqtasks.plugins import load_plugins
from seqtasks.registry import ALL_REGISTRIES


def main(argv: list[str] | None = None) -> None:
    load_plugins([a for a in (argv if argv is not None else sys.argv[1:])])
    for registry in ALL_REGISTRIES:
        print(f"{registry.plural}:")
        names = registry.names()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.describe(name)}")


if __name__ == "__main__":
    main()
