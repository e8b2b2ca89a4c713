"""Surnames by language: reading, de-duplication, and the stratified split that keeps each name in one split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from seqtasks.data.names import SPLITS, deduplicate, read_names_by_language, split_names, split_summary
from seqtasks.errors import ConfigError, DataError

REAL_NAMES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "names" / "by_language"


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for language, text in files.items():
        (directory / f"{language}.txt").write_text(text, encoding="utf-8")
    return directory


def _names(pairs) -> set[str]:
    return {name for name, _ in pairs}


def _corpus(sizes: dict[str, int], shared: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """`sizes[language]` names of its own per language, plus each `shared` name under its languages."""
    pairs = [(f"{language}{i}", language) for language, size in sizes.items() for i in range(size)]
    for name, languages in (shared or {}).items():
        pairs += [(name, language) for language in languages]
    return pairs


def test_reads_stripped_names_with_language_from_file_stem(tmp_path):
    directory = _write(
        tmp_path / "names",
        {
            "Arabic": "Khoury\nNahas\nKhoury\n",
            "German": "\ufeffMüller\n  Abel \n\n   \nAbel",
            "English": "Abel\r\nSmith\r\n",
        },
    )
    (directory / "README.md").write_text("not a language\n", encoding="utf-8")
    pairs = read_names_by_language(directory)
    assert pairs == [
        ("Khoury", "Arabic"),
        ("Nahas", "Arabic"),
        ("Khoury", "Arabic"),
        ("Abel", "English"),
        ("Smith", "English"),
        ("Müller", "German"),
        ("Abel", "German"),
        ("Abel", "German"),
    ]  # Unicode kept as is (no ASCII folding)
    assert deduplicate(pairs) == [
        ("Khoury", "Arabic"),
        ("Nahas", "Arabic"),
        ("Abel", "English"),
        ("Smith", "English"),
        ("Müller", "German"),
        ("Abel", "German"),
    ]


def test_directory_without_txt_files_is_an_error_naming_it(tmp_path):
    (tmp_path / "notes.md").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="no .txt files") as caught:
        read_names_by_language(tmp_path)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(DataError, match="not a directory"):
        read_names_by_language(tmp_path / "missing")


def test_bad_files_fail_with_file_and_line(tmp_path):
    directory = _write(tmp_path / "a", {"Czech": "Novak\n"})
    (directory / "Polish.txt").write_bytes(b"Nowak\nW\xf3jcik\n")  # Latin-1, not UTF-8
    with pytest.raises(DataError) as caught:
        read_names_by_language(directory)
    assert str(caught.value).startswith(f"{directory / 'Polish.txt'}:2: ")
    directory = _write(tmp_path / "b", {"Czech": "Novak\n", "Empty": " \n\n"})
    with pytest.raises(DataError, match="holds only blank lines") as caught:
        read_names_by_language(directory)
    assert "Empty.txt" in str(caught.value)


def test_split_is_disjoint_by_name_covers_everything_and_is_stratified():
    sizes = {"Big": 500, "Mid": 100, "Small": 10, "Tiny": 3, "Two": 2, "One": 1}
    pairs = _corpus(sizes, shared={"Lee": ["Big", "Mid", "Small"], "Kim": ["Tiny", "Big"]})
    splits = split_names(pairs + pairs[:7], seed=0)  # repeated pairs are dropped
    assert list(splits) == ["train", "val", "test"]
    assert sorted(pair for part in splits.values() for pair in part) == sorted(pairs)
    names = {split: _names(part) for split, part in splits.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]
    for language in sizes:
        counts = {split: sum(1 for _, lang in part if lang == language) for split, part in splits.items()}
        total = sum(counts.values())
        if total >= 3:
            assert counts["val"] >= 1 and counts["test"] >= 1, (language, counts)
        if total >= 100:
            for split, fraction in zip(splits, (0.8, 0.1, 0.1), strict=True):
                assert abs(counts[split] / total - fraction) <= 0.02, (language, counts)
    assert "Two" in {lang for _, lang in splits["train"]} and "One" in {lang for _, lang in splits["train"]}


def test_ambiguous_name_lands_in_one_split_under_all_its_languages():
    shared = {f"Shared{i}": ["A", "B", "C"][: 2 + i % 2] for i in range(30)}
    pairs = _corpus({"A": 200, "B": 50, "C": 20}, shared)
    for seed in range(5):
        splits = split_names(pairs, seed=seed)
        where = {name: {split for split, part in splits.items() if name in _names(part)} for name in shared}
        assert all(len(found) == 1 for found in where.values()), where
        for name, languages in shared.items():
            (split,) = where[name]
            assert sorted(lang for n, lang in splits[split] if n == name) == sorted(languages)
        assert set().union(*where.values()) == set(SPLITS)  # the shared names are spread over all splits


def test_split_is_deterministic_for_a_seed_and_independent_of_input_order():
    pairs = _corpus({"A": 300, "B": 40, "C": 5}, shared={"X": ["A", "B"], "Y": ["B", "C"]})
    first = split_names(pairs, seed=3)
    assert split_names(pairs, seed=3) == first
    reordered = split_names(list(reversed(pairs)), seed=3)
    assert {split: sorted(part) for split, part in reordered.items()} == {
        split: sorted(part) for split, part in first.items()
    }
    other = split_names(pairs, seed=4)
    assert _names(other["test"]) != _names(first["test"])
    assert {split: len(part) for split, part in other.items()} == {split: len(part) for split, part in first.items()}


def test_fractions_are_checked_and_a_zero_fraction_split_stays_empty():
    pairs = _corpus({"A": 50, "B": 4})
    splits = split_names(pairs, fractions=(0.9, 0.0, 0.1))
    assert splits["val"] == [] and len(splits["test"]) == 5 + 1
    for bad in [(0.5, 0.5), (0.8, 0.1, 0.2), (1.1, -0.05, -0.05), (0.0, 0.5, 0.5)]:
        with pytest.raises(ConfigError, match="fraction"):
            split_names(pairs, fractions=bad)


def test_split_summary_counts_per_language_and_split():
    splits = {"train": [("a", "X"), ("b", "X"), ("c", "Y")], "val": [("d", "X")], "test": []}
    table = split_summary(splits).splitlines()
    assert table[0].split() == ["language", "train", "val", "test", "total", "train", "%", "val", "%", "test", "%"]
    assert table[1].split() == ["X", "2", "1", "0", "3", "66.7", "33.3", "0.0"]
    assert table[2].split() == ["Y", "1", "0", "0", "1", "100.0", "0.0", "0.0"]
    assert table[3].split()[:5] == ["total", "3", "1", "0", "4"]
    assert table[4].split() == ["names", "3", "1", "0", "4"]


@pytest.mark.skipif(not REAL_NAMES.is_dir(), reason=f"{REAL_NAMES} not present")
def test_real_surnames_split():
    raw = read_names_by_language(REAL_NAMES)
    pairs = deduplicate(raw)
    languages = Counter(language for _, language in pairs)
    by_name = Counter(name for name, _ in pairs)
    ambiguous = sum(1 for count in by_name.values() if count > 1)
    print(f"pairs: {len(raw)} read, {len(pairs)} after dedup; {len(by_name)} distinct names, {ambiguous} ambiguous")
    assert len(raw) == 20050 and len(languages) == 18
    assert len(pairs) < len(raw) and languages["Arabic"] < 200

    splits = split_names(pairs, seed=0)
    print({split: len(part) for split, part in splits.items()})
    print(split_summary(splits))
    assert not _names(splits["train"]) & _names(splits["test"])
    assert not _names(splits["train"]) & _names(splits["val"])
    assert not _names(splits["val"]) & _names(splits["test"])
    test_languages = Counter(language for _, language in splits["test"])
    assert set(test_languages) == set(languages)
    assert 0.45 <= test_languages["Russian"] / len(splits["test"]) <= 0.60
    for language, total in languages.items():
        if total >= 50:
            for split, fraction in zip(splits, (0.8, 0.1, 0.1), strict=True):
                share = sum(1 for _, lang in splits[split] if lang == language) / total
                assert abs(share - fraction) <= 0.04, (language, split, share)
