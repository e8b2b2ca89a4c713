"""Tiny models of every task with ONNX graphs, trained for a few steps and exported with
format=onnx once per test session: shared by tests/test_onnx_export.py (each graph against
PyTorch) and tests/test_onnx_backend.py (predict, evaluate and serve with backend=onnxruntime)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from conftest import FP32, TINY_LM, TINY_TEXT, command, train
from tasks.test_captioning_task import TINY_CAPTIONING, write_toy
from tasks.test_classification_task import NAMES
from tasks.test_tagging_task import TINY as TINY_TAGGING
from tasks.test_tagging_task import conllu, random_sentences
from tasks.test_translation_task import TINY_TRANSLATION, reversal_pairs, write_tsv

SHORT = ["trainer.max_time=null", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]


def classifier(root: Path) -> list[str]:
    (root / "names" / "by_language").mkdir(parents=True)
    for language, names in NAMES.items():
        (root / "names" / "by_language" / f"{language}.txt").write_text("\n".join(names) + "\n")
    return [
        "experiment=names_classify", f"data.root={root}", "encoder.hidden_size=16", "trainer.max_steps=3",
        "trainer.max_epochs=1", "task.ngram_order=3", "task.ngram_buckets=512",
    ]  # fmt: skip


def tagger(root: Path) -> list[str]:
    for split, seed in (("train", 0), ("val", 1), ("test", 2)):
        (root / f"{split}.conllu").write_text(conllu(random_sentences(20, seed)), encoding="utf-8")
    files = [f"data.{split}={root / f'{split}.conllu'}" for split in ("train", "val", "test")]
    tiny = [arg for arg in TINY_TAGGING if not arg.startswith("trainer.max_epochs")]
    return [
        "experiment=ud_ewt_pos", *tiny, *files, "trainer.max_steps=3", "trainer.max_epochs=1",
        "encoder.bidirectional=true", "encoder.num_layers=2",
    ]  # fmt: skip


def language_model(root: Path) -> list[str]:
    (root / "tiny.txt").write_text(TINY_TEXT, encoding="utf-8")
    return ["data=text_file", f"data.path={root / 'tiny.txt'}", *TINY_LM, "encoder.num_layers=2"]


def translator(root: Path) -> list[str]:
    train_file = write_tsv(root / "train.tsv", reversal_pairs(400, 0))
    val = write_tsv(root / "val.tsv", reversal_pairs(20, 1))
    tiny = [arg for arg in TINY_TRANSLATION if not arg.startswith(("trainer.max_epochs", "attention_images"))]
    return [
        *tiny, f"data.train={train_file}", f"data.val={val}", f"data.test={val}", "trainer.max_steps=40",
        "trainer.max_epochs=5", "attention_images.sentences=0", FP32,
    ]  # fmt: skip


def captioner(root: Path) -> list[str]:
    """Images, not features; trained with image_dropout, so that guidance=... may be asked for."""
    files = [f"data.{split}={write_toy(root / split, n, seed)}" for split, n, seed in (("train", 16, 0), ("val", 4, 1))]
    replaced = ("trainer.max_epochs", "attention_images", "task.image_dropout")
    tiny = [arg for arg in TINY_CAPTIONING if not arg.startswith(replaced)]
    return [
        *tiny, *files, f"data.test={root / 'val' / 'captions.tsv'}", "trainer.max_steps=3", "trainer.max_epochs=1",
        "task.image_dropout=0.2", "attention_images.sentences=0",
    ]  # fmt: skip


MODELS: dict[str, Callable[[Path], list[str]]] = {
    "classifier": classifier,
    "tagger": tagger,
    "language_model": language_model,
    "translator": translator,
    "captioner": captioner,
}


@functools.cache
def exported(kind: str) -> tuple[Path, Path]:
    """The model of `kind` (MODELS; its data under the same root) -> (best.ckpt, its directory
    exported with format=onnx)."""
    root = Path(tempfile.mkdtemp(prefix=f"onnx-{kind}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    run_dir = root / "run"
    train(*MODELS[kind](root), *SHORT, "early_stopping.patience=null", run_dir=run_dir)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    command("seqtasks.export", f"ckpt={ckpt}", f"output={run_dir / 'model'}", "format=onnx")
    return ckpt, run_dir / "model"
