# SPDX-License-Identifier: GPL-2.0-or-later
"""
log_index
---------

The kernel log as the checks read it: each line by the region it names, and the
lines of each kernel message that explains a drop
(:data:`rmem_inspect.kernel.messages.LOG_PATTERNS`), found
with one pass over the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rmem_inspect.kernel.messages import LOG_LITERALS, LOG_PATTERNS
from rmem_inspect.model import LogLine

__all__ = ["LogIndex"]

#: A run of node-name characters: a token of a log line that may name a region.
_TOKEN = re.compile(r"[\w@,.\-+]+")
#: The same run without trailing ",.-" (a name closing a sentence or a list). A
#: token names a region as is or trimmed so; when no region's name ends in one of
#: those characters, the trimmed form is the only one that can match, and this
#: pattern yields it directly.
_TRIMMED_TOKEN = re.compile(r"[\w@,.\-+]*[\w@+]")
#: For an ASCII log: bytes.translate() table that turns every byte but the name
#: characters and the line feed into a space, and the trailing ",.-" of a token,
#: once what followed it is a space.
_SPACE_NON_NAME = bytes(
    c if chr(c).isalnum() and c < 0x80 or chr(c) in "_@,.-+\n" else 0x20 for c in range(256)
)
_TRAILING_PUNCT = re.compile(r"[,.\-]+ ")
#: Both again for an ASCII log (where \w is [0-9A-Za-z_]): they match faster.
_TOKEN_ASCII = re.compile(_TOKEN.pattern, re.ASCII)
_TRIMMED_TOKEN_ASCII = re.compile(_TRIMMED_TOKEN.pattern, re.ASCII)


class LogIndex:
    """Kernel log lines by the region they name, and by kind of event."""

    def __init__(self, log: list[LogLine] | None, names: Iterable[str]) -> None:
        self.available = log is not None
        self.lines = log or []
        self.by_region: dict[str, list[str]] = {}
        self.events: dict[str, list[re.Match[str]]] = {k: [] for k in LOG_PATTERNS}
        self.event_lines: dict[str, list[str]] = {k: [] for k in LOG_PATTERNS}
        #: (kind, group) -> group value -> lines, built on first use by named().
        self._named: dict[tuple[str, int], dict[str | None, list[str]]] = {}
        known = set(names)
        texts = [line.text for line in self.lines]
        # Only the kinds of event whose literal is somewhere in the log are looked for
        # line by line: most logs have none of them, and one substring search over
        # the whole log costs less than eleven per line.
        whole = "\n".join(texts)
        for k, pat in LOG_PATTERNS.items():
            literal = LOG_LITERALS[k]
            if literal in whole:
                events, event_lines = self.events[k], self.event_lines[k]
                for text in texts:
                    if literal in text:
                        m = pat.search(text)
                        if m:
                            events.append(m)
                            event_lines.append(text)
        # Attribute each line to the regions it names: tokenise it once and look the
        # tokens up, so the cost is linear in log size, not log x regions.
        by_region = self.by_region
        if any(not n or n[-1] in ",.-" for n in known):
            self._attribute_untrimmed(texts, known)
            return
        named_in = known.intersection
        if whole.isascii() and whole.count("\n") == len(texts) - 1:
            # An ASCII log, a line a record: tokenise it all at once. Every byte that
            # is not a name character becomes a space (C loops over the whole log),
            # then trailing ",.-" go; what is left splits into each line's tokens.
            spaced = (" \n".join(texts) + " ").encode().translate(_SPACE_NON_NAME).decode()
            # blanking ", " ". " "- " clears most trailing punctuation at the cost of
            # a memchr-speed scan each; the regex (a step per byte) finishes the rare
            # runs such as "...", that one pass leaves a mark of
            spaced = spaced.replace(", ", "  ").replace(". ", "  ").replace("- ", "  ")
            if ", " in spaced or ". " in spaced or "- " in spaced:
                spaced = _TRAILING_PUNCT.sub(" ", spaced)
            per_line = zip(texts, map(str.split, spaced.split("\n")), strict=True)
        else:
            tokens = (_TRIMMED_TOKEN_ASCII if whole.isascii() else _TRIMMED_TOKEN).findall
            per_line = zip(texts, map(tokens, texts), strict=True)
        for text, toks in per_line:
            for cand in named_in(toks):
                lines = by_region.get(cand)
                if lines is None:
                    by_region[cand] = [text]
                else:
                    lines.append(text)

    def _attribute_untrimmed(self, texts: list[str], known: set[str]) -> None:
        """Attribution when some region's name ends in ",", "." or "-": every token
        is looked up as is and without its trailing ",.-:"."""
        by_region = self.by_region
        for text in texts:
            toks = (_TOKEN_ASCII if text.isascii() else _TOKEN).findall(text)
            hits = known.intersection(toks)
            for tok in toks:
                if tok[-1] in ",.-:":
                    stripped = tok.rstrip(",.-:")
                    if stripped in known:
                        hits.add(stripped)
            for cand in hits:
                by_region.setdefault(cand, []).append(text)

    def named(self, kind: str, name: str, group: int = 1) -> list[str]:
        """Lines of event ``kind`` whose ``group`` is ``name`` (an index built once per
        kind and group, so that asking for every region stays linear)."""
        index = self._named.get((kind, group))
        if index is None:
            index = self._named[(kind, group)] = {}
            for m, text in zip(self.events[kind], self.event_lines[kind], strict=True):
                try:
                    key = m.group(group)
                except IndexError:
                    continue
                index.setdefault(key, []).append(text)
        lines = index.get(name)
        return list(lines) if lines else []
