"""Simple properties of a text, one value per character, that single recurrent units are known to
track (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"):
inside quotes, inside parentheses, position in the line, a newline just read, a speaker's name in
capitals (a play's "ROMEO:" lines), and any regular expression a user gives.

Each value describes the text up to and including that character: what a unit's activation after
reading it can know. An opening quote is already inside, a closing one already outside.
"""

from __future__ import annotations

import re

# A line that is only a name in capitals and a colon: "ROMEO:", "KING RICHARD III:".
SPEAKER_LINE = re.compile(r"^[A-Z][A-Z .,'&-]*:$", re.MULTILINE)


def inside_toggle(text: str, mark: str) -> list[float]:
    """1 after an odd number of `mark`s (inside a quote), 0 after an even number."""
    values, inside = [], False
    for char in text:
        inside ^= char == mark
        values.append(float(inside))
    return values


def inside_brackets(text: str, opening: str = "(", closing: str = ")") -> list[float]:
    """1 while more brackets are open than closed (the closing one itself is outside)."""
    values, depth = [], 0
    for char in text:
        depth += (char == opening) - (char == closing and depth > 0)
        values.append(float(depth > 0))
    return values


def position_in_line(text: str) -> list[float]:
    """Characters since the last newline (0 at the newline itself)."""
    values, position = [], 0
    for char in text:
        position = 0 if char == "\n" else position + 1
        values.append(float(position))
    return values


def regex_spans(text: str, pattern: str | re.Pattern) -> list[float]:
    """1 on the characters of every match of `pattern`, 0 elsewhere."""
    values = [0.0] * len(text)
    for match in re.finditer(pattern, text):
        values[match.start() : match.end()] = [1.0] * (match.end() - match.start())
    return values


def text_properties(text: str, pattern: str | None = None) -> dict[str, list[float]]:
    """Every property by name, each one value per character of `text`."""
    properties = {
        "inside quotes": inside_toggle(text, '"'),
        "inside parentheses": inside_brackets(text),
        "position in line": position_in_line(text),
        "newline just read": [float(char == "\n") for char in text],
        "speaker name in capitals": regex_spans(text, SPEAKER_LINE),
    }
    if pattern:
        properties[f"regex {pattern}"] = regex_spans(text, pattern)
    return properties
