"""cxx_scan: a small C++ source scanner shared by scripts/check-walls and bench/code_shape.py.

A heuristic, not a parser: it knows comments, string and character literals (raw strings and
digit separators included), preprocessor lines and braces, which is all the walls check and the
code-shape figures need. It never runs the preprocessor, so code under `#if` counts as written.
"""

import re

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"((?:pkg|cmd)/[^"]+)"')


def _raw_string_at(text, i):
    """If text[i] is the `"` of a raw string literal (R"x(...)x", maybe u8R/LR/uR/UR), returns
    the index just past its closing quote; else None."""
    if i == 0 or text[i - 1] != "R":
        return None
    j = i - 1
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
        j -= 1
    if text[j:i] not in ("R", "u8R", "uR", "UR", "LR"):
        return None
    open_paren = text.find("(", i + 1)
    if open_paren < 0 or open_paren - i - 1 > 16:
        return None
    delim = text[i + 1 : open_paren]
    close = text.find(")" + delim + '"', open_paren + 1)
    if close < 0:
        return len(text)
    return close + len(delim) + 2


def _is_digit_separator(text, i):
    """True if the `'` at text[i] separates digits (1'000'000), not a character literal."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_'."):
        j -= 1
    return j < i and text[j].isdigit()


def code_only(text, blank_preprocessor=False):
    """Returns `text` with comments and the contents of string and character literals replaced
    by spaces (quotes kept, newlines kept, so offsets and line numbers stay valid). With
    blank_preprocessor, preprocessor lines (and their continuations) are blanked too."""
    out = list(text)
    n = len(text)
    i = 0
    at_line_start = True  # only whitespace since the last newline

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if c == "\n":
            at_line_start = True
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if at_line_start and c == "#" and blank_preprocessor:
            j = i
            while j < n:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                # A line ending in a backslash continues the directive.
                if k > 0 and text[k - 1] == "\\":
                    j = k + 1
                    continue
                j = k
                break
            # Comments inside the directive are blanked along with it.
            blank(i, j)
            i = j
            continue
        at_line_start = False
        if text.startswith("//", i):
            k = text.find("\n", i)
            k = n if k < 0 else k
            blank(i, k)
            i = k
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            k = n if k < 0 else k + 2
            blank(i, k)
            i = k
            continue
        if c == '"':
            end = _raw_string_at(text, i)
            if end is None:
                j = i + 1
                while j < n and text[j] != '"' and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                end = min(j + 1, n)
            blank(i + 1, end - 1)
            i = end
            continue
        if c == "'":
            if _is_digit_separator(text, i):
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = min(j + 1, n)
            continue
        i += 1
    return "".join(out)


def includes(text):
    """The project includes of a file: [(line_number, "pkg/..." or "cmd/...")]. Include lines
    inside block comments do not count; `#if 0` blocks do (the scanner does not preprocess)."""
    stripped = code_only(text)  # comments gone, `#include "..."` keeps its quotes, not its path
    result = []
    raw_lines = text.split("\n")
    for number, line in enumerate(stripped.split("\n"), start=1):
        if re.match(r'^\s*#\s*include\s*"', line):
            m = INCLUDE_RE.match(raw_lines[number - 1])
            if m:
                result.append((number, m.group(1)))
    return result
