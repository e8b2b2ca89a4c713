"""Looking inside a language model: activations through the reference cells, the unit search, the
HTML page of `python -m seqtasks.inspect`."""

import contextlib
import io
from html.parser import HTMLParser

import pytest
import torch
from conftest import TINY_LM, train

from seqtasks import inspect as inspect_command
from seqtasks.analysis.gradient_flow import decay_ratio, gradient_norms
from seqtasks.analysis.properties import text_properties
from seqtasks.analysis.units import correlations, search_units, trace_language_model
from seqtasks.data.text_stream import TextStreamData
from seqtasks.encoders.cells import ElmanCell
from seqtasks.encoders.reference import ReferenceRNN
from seqtasks.runtime.build import build_task, container, load_task

QUOTED = 'He said "go on" and then "stop here now" and we left. "Yes" she said, "no". ' * 6


def language_model(compose_config, path, *overrides):
    cfg = compose_config(["data=text_file", f"data.path={path}", "task.tbptt_steps=8", "data.batch_size=2", *overrides])
    data = TextStreamData(**{k: v for k, v in container(cfg.data).items() if k != "name"})
    return build_task(cfg, data).eval()


@torch.no_grad()
def plant_quote_unit(task) -> None:
    """GRU unit 0 flips at every '"' and holds between them: h = tanh(1 - 4 h) at a quote (z = 0),
    h kept elsewhere (z = 1): 0 at the start, about +0.8 to +1 inside quotes, -1 outside."""
    for p in task.parameters():
        p.zero_()
    quote = task.tokenizer.vocab.id('"')
    task.embedding.weight[quote, 0] = 1.0
    rnn = task.encoder.rnn  # nn.GRU, rows r, z, n
    hidden = rnn.hidden_size
    rnn.bias_ih_l0[0] = 20.0  # reset gate open
    rnn.weight_ih_l0[hidden, 0] = -40.0  # update gate: 0 at a quote ...
    rnn.bias_ih_l0[hidden] = 20.0  # ... 1 elsewhere
    rnn.weight_hh_l0[2 * hidden, 0] = -4.0
    rnn.bias_ih_l0[2 * hidden] = 1.0


def test_the_unit_search_finds_a_unit_planted_to_track_quotes(compose_config, tmp_path):
    path = tmp_path / "quoted.txt"
    path.write_text(QUOTED)
    task = language_model(compose_config, path, "encoder=gru", "encoder.hidden_size=4", "task.embedding_dim=4")
    plant_quote_unit(task)
    findings, _ = search_units(trace_language_model(task, QUOTED))
    best = max((f for f in findings if f.property == "inside quotes"), key=lambda f: abs(f.r))
    assert best.unit == "h0:0"
    assert best.r > 0.9


def test_activations_of_every_cell_match_the_fused_model(compose_config, tiny_text_file):
    text = tiny_text_file.read_text()[:200]
    for encoder in ("rnn", "lstm", "gru"):
        task = language_model(
            compose_config, tiny_text_file, f"encoder={encoder}", "encoder.hidden_size=6", "encoder.num_layers=2"
        )
        trace = trace_language_model(task, text)
        with torch.no_grad():
            fused, _ = task.encoder(task.embedding(torch.tensor(task.tokenizer.encode(text))[None]))  # (1, T, H)
        torch.testing.assert_close(trace.activations["h1"], fused[0], atol=1e-5, rtol=1e-4)
        assert ("c0" in trace.activations) == (encoder == "lstm")
        assert torch.allclose(trace.top_probs.sum(-1) <= 1.0 + 1e-6, torch.tensor(True))
        assert (trace.top_probs[:, :-1] >= trace.top_probs[:, 1:]).all()  # most likely first


def test_correlation_is_pearsons_r():
    values = torch.tensor([[1.0, 2.0, 5.0], [2.0, 2.0, 3.0], [3.0, 2.0, 4.0], [4.0, 2.0, 0.0]])
    target = torch.tensor([2.0, 4.0, 6.0, 8.0])
    r = correlations(values, target)
    assert r[0] == pytest.approx(1.0)
    assert r[1] == 0.0  # a constant unit correlates with nothing
    expected = torch.corrcoef(torch.stack([values[:, 2], target]))[0, 1]
    assert r[2] == pytest.approx(float(expected))


def test_text_properties_describe_the_text_up_to_each_character():
    text = 'ROMEO:\nsay "a (b)" c\n'
    p = text_properties(text, pattern="c")
    line = lambda name: "".join(str(int(v) % 10) for v in p[name])  # noqa: E731
    assert line("inside quotes") == "000000000001111110000"
    assert line("inside parentheses") == "000000000000001100000"
    assert line("speaker name in capitals") == "111111000000000000000"
    assert line("newline just read") == "000000100000000000001"
    assert line("position in line") == "123456012345678901230"
    assert line("regex c") == "000000000000000000010"


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables = self.rows = 0
        self.text = []
        self.depth = 0
        self.scripts_from_elsewhere = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "top":
            self.tables += 1
        if tag == "tr" and self.tables:
            self.rows += 1
        if tag in ("script", "link", "img") and (attrs.get("src") or attrs.get("href")):
            self.scripts_from_elsewhere += 1
        if tag == "span" and attrs.get("class") == "c":
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "span" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def test_the_inspect_page_shows_the_text_and_a_top_5_table_under_every_character(tmp_path, tiny_text_file):
    train("data=text_file", f"data.path={tiny_text_file}", *TINY_LM, run_dir=tmp_path / "run")
    heldout = tmp_path / "heldout.txt"
    heldout.write_text('All:\n"Speak (now)," said he.\n')
    page = tmp_path / "page.html"
    out = io.StringIO()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with contextlib.redirect_stdout(out):
        inspect_command.main([f"ckpt={ckpt}", f"input={heldout}", f"output={page}", "unit=0:3", "pattern=S"])
    parser = PageParser()
    parser.feed(page.read_text())
    shown = heldout.read_text()
    assert parser.tables == len(shown)
    assert parser.rows >= 5 * len(shown)  # 5 guesses under each character (plus the units table)
    assert "".join(parser.text).replace("\u21b5", "\n").replace("\u2423", " ") == shown
    assert parser.scripts_from_elsewhere == 0  # opens from disk, no network
    assert "inside quotes" in out.getvalue() and "regex S" in out.getvalue()
    assert len(load_task(ckpt).tokenizer) >= 5


def test_inspect_names_the_valid_units_for_one_that_does_not_exist(tmp_path, tiny_text_file, capsys):
    train("data=text_file", f"data.path={tiny_text_file}", *TINY_LM, run_dir=tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as exit_:
        inspect_command.main([f"ckpt={ckpt}", f"input={tiny_text_file}", f"output={tmp_path / 'p.html'}", "unit=h3:0"])
    assert exit_.value.code == 2
    assert "unit=h3:0" in capsys.readouterr().err


def test_gradients_flow_unchanged_through_identity_recurrence_with_linear_activations():
    # h_t = relu(I h_{t-1} + 1) stays positive, so relu is the identity and dh_T/dh_k = I for every
    # k: the known answer is a flat curve.
    rnn = ReferenceRNN(ElmanCell, input_size=3, hidden_size=5, nonlinearity="relu")
    with torch.no_grad():
        cell = rnn.cells[0]
        cell.weight_hh.copy_(torch.eye(5))
        cell.weight_ih.zero_()
        cell.bias_ih.fill_(1.0)
        cell.bias_hh.zero_()
    direction = torch.randn(5)
    norms = gradient_norms(rnn, torch.randn(2, 40, 3), lambda h: (h @ direction).sum())
    torch.testing.assert_close(norms, torch.full_like(norms, float(direction.norm())))
    assert float(decay_ratio(norms, 30)[0]) == pytest.approx(1.0)


def test_gradients_vanish_through_a_contracting_recurrence():
    rnn = ReferenceRNN(ElmanCell, input_size=3, hidden_size=5)
    with torch.no_grad():
        rnn.cells[0].weight_hh.copy_(0.5 * torch.eye(5))  # |dh_t/dh_{t-1}| <= 0.5 per step
    norms = gradient_norms(rnn, torch.randn(2, 20, 3), lambda h: h.sum())
    assert float(decay_ratio(norms, 10)[0]) <= 0.5**10 * 1.0001
    assert (norms[0, 1:] >= norms[0, :-1]).all()  # the nearer the step, the larger its gradient
