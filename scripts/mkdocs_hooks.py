"""MkDocs hook (mkdocs.yml: `hooks`): the configuration reference page, `reference.md`, is generated
from the registries at every build (`seqtasks.reference`), so it lists every registered component
and option of the code that builds the site, plugins installed beside it included."""

from __future__ import annotations

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    from seqtasks.reference import reference_markdown  # imports torch: only when a site is built

    files.append(File.generated(config, "reference.md", content=reference_markdown()))
    return files
