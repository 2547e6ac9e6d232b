"""Text layout for the text views: where each token or word sits in the text, and which tokens form a word.

No model here: only strings. Tokenizer markers handled: WordPiece continuations (``##``), SentencePiece
(``▁``) and byte-level BPE (``Ġ``) word starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Span = tuple[int, int]

_CLOSING = re.compile(r"^(?:[.,!?;:%)\]}…]+|'(?:s|t|re|ve|ll|d|m)|n't)$", re.IGNORECASE)
_OPENING = {"(", "[", "{", "$", "«", "“"}
_START_MARKERS = ("▁", "Ġ")


def strip_marker(piece: str) -> str:
    """A token's surface text: without a leading ``##``, ``▁`` or ``Ġ``."""
    if piece.startswith("##") and len(piece) > 2:
        return piece[2:]
    if piece[:1] in _START_MARKERS:
        return piece[1:]
    return piece


def detokenize(words: Sequence[str]) -> tuple[str, list[Span]]:
    """Words joined into a readable text (no space before closing punctuation or after an opening
    bracket) and the character span of each word in it."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    prev = ""
    for i, word in enumerate(words):
        word = strip_marker(str(word))
        if i > 0 and not _CLOSING.match(word) and prev not in _OPENING:
            parts.append(" ")
            pos += 1
        spans.append((pos, pos + len(word)))
        parts.append(word)
        pos += len(word)
        prev = word
    return "".join(parts), spans


def align(text: str, pieces: Sequence[str]) -> list[Span] | None:
    """Character spans of ``pieces`` found left to right in ``text`` (case-insensitive, markers stripped);
    None when one is not found (e.g. ``[UNK]`` or a normalised accent)."""
    lower = text.lower()
    spans: list[Span] = []
    cursor = 0
    for piece in pieces:
        surface = strip_marker(str(piece)).lower()
        if not surface:
            spans.append((cursor, cursor))
            continue
        start = lower.find(surface, cursor)
        if start < 0:
            return None
        spans.append((start, start + len(surface)))
        cursor = start + len(surface)
    return spans


def valid_spans(spans: object, n: int, length: int) -> list[Span] | None:
    """``spans`` as ``n`` ``(start, end)`` pairs inside ``[0, length]``, in order and not overlapping; else None."""
    if spans is None:
        return None
    try:
        out = [(int(a), int(b)) for a, b in spans]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(out) != n:
        return None
    end = 0
    for a, b in out:
        if not 0 <= a <= b <= length or a < end:
            return None
        end = b
    return out


def word_groups(tokens: Sequence[str], spans: Sequence[Span] | None = None) -> list[int]:
    """The word index of each token: ``##`` pieces continue the previous word; with ``▁``/``Ġ`` markers
    only marked pieces start a word; otherwise a token touching the previous one (spans without a gap)
    and made of word characters continues it, and every other token is a word."""
    groups: list[int] = []
    markers = any(str(t)[:1] in _START_MARKERS for t in tokens)
    for i, tok in enumerate(tokens):
        tok = str(tok)
        if i == 0:
            groups.append(0)
            continue
        if tok.startswith("##") and len(tok) > 2:
            cont = True
        elif markers:
            cont = tok[:1] not in _START_MARKERS
        elif spans is not None:
            prev = str(tokens[i - 1])
            cont = spans[i][0] == spans[i - 1][1] and prev[-1:].isalnum() and tok[:1].isalnum()
        else:
            cont = False
        groups.append(groups[-1] if cont else groups[-1] + 1)
    return groups
