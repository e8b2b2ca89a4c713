"""Surnames by language of origin (the char-RNN tutorials' `data/names/<Language>.txt`): reading,
de-duplicating, and a fixed, stratified train/val/test split that never puts one name in two splits.

Names are kept exactly as written (only surrounding whitespace and a BOM are removed): no Unicode
normalisation and no folding to ASCII, so "Müller" and "Muller" are different names. Names are
compared exactly (case-sensitive) throughout: grouping, de-duplication and the split."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from seqtasks.data.text import read_lines
from seqtasks.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def read_names_by_language(directory: str | Path) -> list[tuple[str, str]]:
    """(name, language) pairs from every `<directory>/<Language>.txt`, the language being the file's
    stem. Files are read in sorted order, lines in file order; each line is stripped and blank lines
    are skipped. Duplicates are kept (see `deduplicate`). A missing, empty or non-UTF-8 file fails
    with a DataError naming it (and the line); so does a directory with no .txt file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "not a directory; expected a folder of <Language>.txt files")
    files = sorted(path for path in directory.glob("*.txt") if path.is_file())
    if not files:
        raise DataError(directory, "no .txt files; expected one <Language>.txt file (one name a line) per language")
    pairs: list[tuple[str, str]] = []
    for path in files:
        language = path.stem
        for line in read_lines(path):
            name = line.strip()
            if name:
                pairs.append((name, language))
    return pairs


def deduplicate(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs without repeated (name, language) pairs, in order of first occurrence. A name listed
    under several languages keeps one pair per language."""
    return list(dict.fromkeys((name, language) for name, language in pairs))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != len(SPLITS):
        raise ConfigError(f"split fractions must be {len(SPLITS)} numbers (train, val, test), got {fractions!r}")
    values = tuple(float(value) for value in fractions)
    if any(not math.isfinite(value) or value < 0 for value in values) or not math.isclose(sum(values), 1.0):
        raise ConfigError(f"split fractions must be non-negative and sum to 1, got {fractions!r}")
    if values[0] == 0:
        raise ConfigError(f"the train fraction must be positive, got {fractions!r}")
    return values[0], values[1], values[2]


def _quotas(count: int, fractions: tuple[float, float, float]) -> list[int]:
    """Per-split target counts for a language with `count` pairs: largest-remainder rounding of
    count * fraction (ties to the earlier split), then every non-train split with a positive fraction
    gets at least one when the language has at least one pair per such split plus one for train."""
    exact = [count * fraction for fraction in fractions]
    quotas = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: count - sum(quotas)]:
        quotas[i] += 1
    needy = [i for i in range(1, len(fractions)) if fractions[i] > 0]
    if count >= len(needy) + 1:
        for i in needy:
            if quotas[i] == 0:
                donor = max(range(len(quotas)), key=lambda j: (quotas[j], -j))
                quotas[donor] -= 1
                quotas[i] += 1
    return quotas


def split_names(
    pairs: Iterable[tuple[str, str]], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[tuple[str, str]]]:
    """A fixed split of (name, language) pairs into {"train", "val", "test"}, stratified by language,
    with every pair of one name in the same split (a surname listed under several languages keeps all
    its languages, and a val/test name is never seen in training under any language).

    Method (deterministic for a seed; independent of input order, dict order and PYTHONHASHSEED):
    1. duplicate pairs are dropped; pairs are grouped by name (a group = a name and its languages);
    2. each language gets integer quotas per split from its pair count (`_quotas`: ~fractions, and
       at least one val and one test pair for a language with >= 3 pairs);
    3. the groups, sorted by name, are shuffled with random.Random(seed), then stably reordered so
       that groups with more languages come first (they are the constrained ones; the single-language
       groups that follow then fill the remaining quotas exactly);
    4. each group goes to the split where its languages are most under-filled: the split (among those
       with a positive fraction) with the largest sum over the group's languages of
       (quota - filled) / max(quota, 1); ties go to the earlier split (train, val, test).
    For a language whose names are all its own, the counts equal its quotas exactly; languages that
    share names with others can drift by a few pairs. The lists keep the input order of the pairs."""
    fractions = _check_fractions(fractions)
    unique = deduplicate(pairs)
    groups: dict[str, list[str]] = {}
    for name, language in unique:
        groups.setdefault(name, []).append(language)
    counts: dict[str, int] = {}
    for _, language in unique:
        counts[language] = counts.get(language, 0) + 1
    quotas = {language: _quotas(count, fractions) for language, count in counts.items()}
    filled = {language: [0] * len(SPLITS) for language in counts}
    allowed = [i for i, fraction in enumerate(fractions) if fraction > 0]

    order = sorted(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda name: -len(groups[name]))  # stable: keeps the shuffled order within a size

    assignment: dict[str, int] = {}
    for name in order:
        languages = sorted(groups[name])

        def under_filled(split: int, languages: list[str] = languages) -> float:
            return sum(
                (quotas[language][split] - filled[language][split]) / max(quotas[language][split], 1)
                for language in languages
            )

        split = max(allowed, key=lambda i: (under_filled(i), -i))
        assignment[name] = split
        for language in languages:
            filled[language][split] += 1

    result: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    for name, language in unique:
        result[SPLITS[assignment[name]]].append((name, language))
    return result


def split_summary(splits: dict[str, list[tuple[str, str]]]) -> str:
    """A plain-text table: one row per language (sorted) with its pair count in each split, its total
    and the share of its pairs in each split; then a total row and the number of distinct names per
    split."""
    split_keys = list(splits)
    languages = sorted({language for pairs in splits.values() for _, language in pairs})
    counts = {split: {} for split in split_keys}
    for split, pairs in splits.items():
        for _, language in pairs:
            counts[split][language] = counts[split].get(language, 0) + 1

    header = ["language", *split_keys, "total", *(f"{split} %" for split in split_keys)]
    rows = []

    def row(label: str, values: list[int]) -> list[str]:
        total = sum(values)
        shares = [f"{100 * value / total:.1f}" if total else "-" for value in values]
        return [label, *(str(value) for value in values), str(total), *shares]

    for language in languages:
        rows.append(row(language, [counts[split].get(language, 0) for split in split_keys]))
    rows.append(row("total", [len(splits[split]) for split in split_keys]))
    names = [len({name for name, _ in splits[split]}) for split in split_keys]
    rows.append(["names", *(str(value) for value in names), str(sum(names)), *([""] * len(split_keys))])

    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = []
    for line in [header, *rows]:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
