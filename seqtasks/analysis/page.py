"""One self-contained HTML page (no network resources, opens from disk) of a language model read
over a text: every character coloured by a unit's activation, and under it the model's top-5
guesses for the next character, shaded by probability (the pictures of Karpathy's "The
Unreasonable Effectiveness of Recurrent Neural Networks"). A table lists the units the search
found per text property; clicking one recolours the text with it (inline script, data embedded)."""

from __future__ import annotations

import html
import json

from torch import Tensor

from seqtasks.analysis.units import Finding, UnitTrace

STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
.text { font-family: monospace; line-height: 1; }
.ch { display: inline-block; vertical-align: top; margin: 0 1px 6px 0; text-align: center; min-width: 0.9em; }
.ch > .c { display: block; padding: 2px 1px; white-space: pre; font-size: 15px; }
table.top { border-collapse: collapse; font-size: 10px; margin: 0 auto; }
table.top td { padding: 0 1px; white-space: pre; }
table.units td, table.units th { padding: 2px 8px; text-align: left; }
table.units tr.pick { cursor: pointer; }
table.units tr.pick:hover { background: #eee; }
.line { display: block; }
"""

SCRIPT = """
const ACTIVATIONS = %s;
function colour(a) {  // a in [-1, 1]: blue below zero, red above, white at zero
  const v = Math.round(255 * (1 - Math.min(1, Math.abs(a))));
  return a >= 0 ? `rgb(255,${v},${v})` : `rgb(${v},${v},255)`;
}
function show(unit) {
  const values = ACTIVATIONS[unit];
  document.querySelectorAll('.ch').forEach(ch => {
    ch.firstChild.style.background = colour(values[+ch.dataset.i]);
  });
  document.getElementById('unit').textContent = unit;
}
document.querySelectorAll('tr.pick').forEach(row => row.addEventListener('click', () => show(row.dataset.unit)));
"""


def scaled(values: Tensor) -> list[float]:
    """Activations divided by their largest magnitude, to [-1, 1] (a memory cell is unbounded)."""
    peak = float(values.abs().max()) or 1.0
    return [round(float(v) / peak, 3) for v in values]


def colour(a: float) -> str:
    v = round(255 * (1 - min(1.0, abs(a))))
    return f"rgb(255,{v},{v})" if a >= 0 else f"rgb({v},{v},255)"


def shade(p: float) -> str:
    """A green as deep as the probability."""
    return f"rgba(0,170,0,{p:.2f})"


def visible(piece: str) -> str:
    return html.escape(piece.replace("\n", "\u21b5").replace(" ", "\u2423") if piece.strip() == "" else piece)


def character_cell(i: int, piece: str, activation: float, guesses: list[str], probs: list[float]) -> str:
    rows = "".join(
        f'<tr><td style="background:{shade(p)}" title="{p:.3f}">{visible(g)}</td></tr>'
        for g, p in zip(guesses, probs, strict=True)
    )
    return (
        f'<span class="ch" data-i="{i}"><span class="c" style="background:{colour(activation)}">'
        f'{visible(piece)}</span><table class="top">{rows}</table></span>'
    )


def render_page(
    trace: UnitTrace, findings: list[Finding], absent: list[str], unit: str, title: str, show: int = 3000
) -> str:
    """The page for the first `show` positions of the trace, coloured by `unit`."""
    show = min(show, len(trace.pieces))
    units = list(dict.fromkeys([unit, *(f.unit for f in findings)]))
    data = {name: scaled(trace.unit(name)[:show]) for name in units}
    rows = "".join(
        f'<tr class="pick" data-unit="{f.unit}"><td>{html.escape(f.property)}</td>'
        f"<td>{f.unit}</td><td>{f.r:+.3f}</td></tr>"
        for f in findings
    )
    missing = ""
    if absent:
        missing = f"<p>Absent from the text (no correlation to measure): {html.escape(', '.join(absent))}.</p>"
    text = []
    for i in range(show):
        text.append(character_cell(i, trace.pieces[i], data[unit][i], trace.top_pieces[i], trace.top_probs[i].tolist()))
        if trace.pieces[i] == "\n":
            text.append('<span class="line"></span>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Text coloured by unit <b id="unit">{unit}</b> (red: positive, blue: negative, scaled by its largest
magnitude); under each character the model's top {trace.top_probs.shape[1]} guesses for the next one, green by
probability (hover for the figure). Units: h&lt;layer&gt;:&lt;index&gt; hidden,
c&lt;layer&gt;:&lt;index&gt; LSTM memory cell.</p>
<h2>Units that follow the text (Pearson r over all {len(trace.pieces)} positions; click to show)</h2>
<table class="units"><tr><th>property</th><th>unit</th><th>r</th></tr>{rows}</table>
{missing}
<h2>The text ({show} of {len(trace.pieces)} positions)</h2>
<div class="text">{"".join(text)}</div>
<script>{SCRIPT % json.dumps(data)}</script>
</body></html>
"""
