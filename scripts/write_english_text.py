"""Write unlabelled English text for a language model to pretrain on (experiment=sst2_lm, then
sst2_ulmfit), from the training splits of the project's datasets, in SST-2's style: lowercased, PTB-like
tokens separated by spaces, one sentence per line.

    python scripts/write_english_text.py                               # sst2 ewt multi30k
    python scripts/write_english_text.py --sources sst2 --out /tmp/sst2_sentences.txt
    python -m seqtasks experiment=sst2_ulmfit \\
        'pretrain.overrides=[experiment=sst2_lm,data.path=<out>,data.text_column=null]'

Sources (training splits only, so that no validation or test sentence is read):
  sst2      the 6,920 sentences of Kim's sentence-level SST-2 training split (the full sentences whose
            phrases GLUE's train.tsv labels; its -lrb-/-rrb- written as GLUE's brackets)
  ewt       the 12,544 sentences of UD English EWT's training split (its word forms: web text, reviews
            among them)
  multi30k  the 29,000 English image descriptions of Multi30k's training split

The datasets are found under the data root ($SEQTASKS_DATA), or downloaded and checksum-verified.
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from seqtasks.data.catalogue import locate
from seqtasks.data.conllu import iter_conllu
from seqtasks.data.files import data_root

# A word with its apostrophe suffix split off as PTB does ("do n't", "man 's"), a number, or one symbol.
TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+|[^\w\s]")


def tokens(text: str) -> str:
    """Raw English -> lowercased PTB-like tokens separated by spaces."""
    return " ".join(TOKEN.findall(text.lower()))


def sst2_sentences(root: Path) -> Iterator[str]:
    path = locate("sst2/sentence_level/stsa.binary.train", root, download=True)
    for line in path.read_text(encoding="utf-8").splitlines():
        _label, _, sentence = line.partition(" ")  # "<label> <sentence>"
        yield sentence.replace("-lrb-", "(").replace("-rrb-", ")").strip()


def ewt_sentences(root: Path) -> Iterator[str]:
    path = locate("ud_english_ewt/en_ewt-ud-train.conllu", root, download=True)
    for sentence in iter_conllu(path):
        yield " ".join(word.form for word in sentence.words).lower()


def multi30k_sentences(root: Path) -> Iterator[str]:
    path = locate("multi30k/train.en.gz", root, download=True)
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        yield from (tokens(line) for line in lines)


SOURCES: dict[str, Callable[[Path], Iterator[str]]] = {
    "sst2": sst2_sentences,
    "ewt": ewt_sentences,
    "multi30k": multi30k_sentences,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    parser.add_argument("--out", type=Path, help="default: <data root>/english_text/<sources>.txt")
    args = parser.parse_args()
    root = data_root(None)
    out = args.out or root / "english_text" / f"{'_'.join(args.sources)}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for source in args.sources for line in SOURCES[source](root) if line]
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines):,} sentences, {sum(len(line.split()) for line in lines):,} tokens -> {out}")


if __name__ == "__main__":
    main()
