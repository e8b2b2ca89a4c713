"""scripts/write_english_text.py: the training splits' English in SST-2's style, one sentence per line."""

import gzip
import sys

from conftest import load_script

EWT = """# sent_id = s1
# text = I can't wait.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
2\tca\tcan\tAUX\tMD\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\twait\twait\tVERB\tVB\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

"""


def test_raw_text_is_split_as_ptb_splits_it():
    script = load_script("write_english_text")
    assert script.tokens("Don't stop, the man's dog ran 2 km.") == "do n't stop , the man 's dog ran 2 km ."


def test_the_script_writes_each_training_split_as_sst2_writes_its_text(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "sst2" / "sentence_level").mkdir(parents=True)
    (root / "sst2" / "sentence_level" / "stsa.binary.train").write_text(
        "1 a -lrb- quietly -rrb- moving film .\n0 dull .\n", encoding="utf-8"
    )
    (root / "ud_english_ewt").mkdir()
    (root / "ud_english_ewt" / "en_ewt-ud-train.conllu").write_text(EWT, encoding="utf-8")
    (root / "multi30k").mkdir()
    with gzip.open(root / "multi30k" / "train.en.gz", "wt", encoding="utf-8") as out:
        out.write("A dog's toy isn't red.\n")
    monkeypatch.setenv("SEQTASKS_DATA", str(root))
    monkeypatch.setattr(sys, "argv", ["write_english_text.py"])
    load_script("write_english_text").main()
    written = (root / "english_text" / "sst2_ewt_multi30k.txt").read_text(encoding="utf-8")
    assert written == "a ( quietly ) moving film .\ndull .\ni ca n't wait .\na dog 's toy is n't red .\n"
