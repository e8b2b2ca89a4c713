"""DataLoader worker processes started with `spawn` (the macOS and Windows default) receive the
dataset and the collate object pickled: every token-budget datamodule must give the same batches
with data.num_workers=1 under spawn as in the main process."""

from __future__ import annotations

import pytest
import torch

from seqtasks.configuration.registry import DATASETS

CONLLU = "".join(
    f"1\t{w}\t_\tNOUN\t_\t_\t0\troot\t_\t_\n2\tran\t_\tVERB\t_\t_\t1\tdep\t_\t_\n\n"
    for w in ("dog", "cat", "bird", "fish")
)


@pytest.fixture(params=["names", "conllu", "parallel"])
def datamodule(request, tmp_path):
    """A tiny dataset of each token-budget kind -> (config without num_workers, tokenizer config)."""
    if request.param == "names":
        folder = tmp_path / "names" / "by_language"
        folder.mkdir(parents=True)
        (folder / "Russian.txt").write_text("".join(f"Ivanov{i}\n" for i in range(20)))
        (folder / "Spanish.txt").write_text("".join(f"Garcia{i}\n" for i in range(20)))
        return {"name": "names", "root": str(tmp_path), "max_tokens": 40}, {"name": "char"}
    if request.param == "conllu":
        for split in ("train", "val"):
            (tmp_path / f"{split}.conllu").write_text(CONLLU)
        return (
            {
                "name": "conllu",
                "train": str(tmp_path / "train.conllu"),
                "val": str(tmp_path / "val.conllu"),
                "test": None,
                "max_tokens": 4,
            },
            {"name": "word"},
        )
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"ein Hund {i}\ta dog {i}\n" for i in range(12)))
    return {"name": "parallel", "train": str(pairs), "val": str(pairs), "max_tokens": 60}, {"name": "char"}


def batches(loader) -> list[dict]:
    """Every batch's tensors and index lists, comparable across processes."""
    out = []
    for batch in loader:
        out.append(
            {name: value.tolist() if isinstance(value, torch.Tensor) else value for name, value in vars(batch).items()}
        )
    return out


@pytest.mark.slow
def test_spawned_workers_give_the_same_batches(datamodule):
    config, tokenizer = datamodule
    in_process = DATASETS.build({**config, "num_workers": 0})
    in_process.build_tokenizers(tokenizer)
    with_workers = DATASETS.build({**config, "num_workers": 1})
    with_workers.use_tokenizers(in_process.tokenizers)
    loader = with_workers.loader("train")  # the shuffled split: the sampler stays in this process
    loader.multiprocessing_context = "spawn"
    assert batches(loader) == batches(in_process.loader("train"))
