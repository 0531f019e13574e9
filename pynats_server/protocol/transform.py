"""Subject transforms for account imports (nats-server subject_transform.go, the strict subset).

Sans-IO. A transform maps subjects matching a source pattern to a destination built from the
source's wildcard tokens: `*` tokens are numbered from 1 in order, and the destination refers
to them as `$N` or `{{wildcard(N)}}`; a destination `*` stands for the next wildcard in order
(nats-server's transformTokenize), and a trailing `>` takes what the source's `>` matched.
"""

from __future__ import annotations

import re

_WILDCARD_REF = re.compile(r"^(?:\$(\d+)|\{\{\s*wildcard\s*\(\s*(\d+)\s*\)\s*\}\})$", re.IGNORECASE)


class TransformError(ValueError):
    pass


class SubjectTransform:
    """`src` -> `dest`; `transform()` gives None for a subject that does not match `src`."""

    __slots__ = ("src", "dest", "_src", "_dest", "_nwc")

    def __init__(self, src: str, dest: str) -> None:
        self.src = src
        self.dest = dest
        self._src = src.split(".")
        if ">" in self._src[:-1]:
            raise TransformError(f"invalid source subject {src!r}")
        self._nwc = self._src.count("*")
        parts: list[str | int] = []
        next_wc = 1
        for i, t in enumerate(dest.split(".")):
            m = _WILDCARD_REF.match(t)
            if m:
                n = int(m.group(1) or m.group(2))
                if not 1 <= n <= self._nwc:
                    raise TransformError(f"wildcard index {n} out of range in {dest!r}")
                parts.append(n)
            elif t == "*":
                if next_wc > self._nwc:
                    raise TransformError(f"more wildcards in {dest!r} than in {src!r}")
                parts.append(next_wc)
                next_wc += 1
            elif t == ">":
                if self._src[-1] != ">" or i != len(dest.split(".")) - 1:
                    raise TransformError(f"'>' in {dest!r} needs a trailing '>' in {src!r}")
                parts.append(0)  # what the source's '>' matched
            elif not t:
                raise TransformError(f"invalid destination subject {dest!r}")
            else:
                parts.append(t)
        self._dest = parts

    def transform(self, subject: str) -> str | None:
        tokens = subject.split(".")
        src = self._src
        wild: list[str] = []
        rest: list[str] = []
        for i, p in enumerate(src):
            if p == ">":
                if len(tokens) <= i:
                    return None
                rest = tokens[i:]
                break
            if i >= len(tokens):
                return None
            if p == "*":
                wild.append(tokens[i])
            elif p != tokens[i]:
                return None
        else:
            if len(tokens) != len(src):
                return None
        out: list[str] = []
        for part in self._dest:
            if isinstance(part, str):
                out.append(part)
            elif part == 0:
                out.extend(rest)
            else:
                out.append(wild[part - 1])
        return ".".join(out)

    def reverse(self) -> SubjectTransform:
        """The transform back from `dest` to `src` (wildcard references swapped)."""
        # Destination wildcard k (in the order they appear) becomes a `*` in the new source;
        # the new destination refers to it where the old source had its `*`.
        order: dict[int, int] = {}
        new_src: list[str] = []
        for part in self._dest:
            if type(part) is str:
                new_src.append(part)
            elif part == 0:
                new_src.append(">")
            else:
                order[part] = len(order) + 1  # type: ignore[index]
                new_src.append("*")
        new_dest: list[str] = []
        n = 0
        for t in self._src:
            if t == "*":
                n += 1
                new_dest.append(f"${order[n]}" if n in order else "*")
            else:
                new_dest.append(t)
        return SubjectTransform(".".join(new_src), ".".join(new_dest))
