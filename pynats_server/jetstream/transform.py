"""Subject transforms of streams (nats-server's non-strict subjectTransform).

Streams use them on ingest (`subject_transform`), for republishing (`republish`) and for the
subjects of sourced and mirrored messages (`subject_transforms` of a source). Unlike account
import mappings (protocol/transform.py, the reversible subset), these accept every mapping
function: `$N` / `{{wildcard(N)}}`, `{{partition(n[,N...])}}`, `{{splitFromLeft(N,p)}}`,
`{{splitFromRight(N,p)}}`, `{{sliceFromLeft(N,s)}}`, `{{sliceFromRight(N,s)}}`,
`{{split(N,delim)}}`, `{{left(N,l)}}`, `{{right(N,l)}}`, `{{random(n)}}`. Errors carry
nats-server's texts (`invalid mapping destination: wildcard index out of range in $2: [2]`).

Sans-IO.
"""

from __future__ import annotations

import random
import re

from ..protocol.subjects import is_subset_match

NO_TRANSFORM, PARTITION, WILDCARD, SPLIT_LEFT, SPLIT_RIGHT, SLICE_LEFT, SLICE_RIGHT, SPLIT, LEFT, RIGHT, RANDOM = range(11)

_INVALID = "invalid mapping destination"
ERR_BAD_SUBJECT = "invalid subject"
ERR_INVALID_TRANSFORM = f"{_INVALID}: invalid transform"
ERR_UNKNOWN_FUNCTION = f"{_INVALID}: unknown function"
ERR_INDEX_RANGE = f"{_INVALID}: wildcard index out of range"
ERR_NOT_ENOUGH_ARGS = f"{_INVALID}: not enough arguments passed to the function"
ERR_INVALID_ARG = f"{_INVALID}: function argument is invalid or in the wrong format"
ERR_TOO_MANY_ARGS = f"{_INVALID}: too many arguments passed to the function"


class TransformError(ValueError):
    """Go's error text (a mapping destination error reads `<err> in <token>`)."""


def _dest_err(token: str, err: str) -> TransformError:
    return TransformError(f"{err} in {token}" if token else err)


def _fn(name: str) -> re.Pattern[str]:
    pat = "".join(f"[{c.lower()}{c.upper()}]" if i == 0 or c.isupper() else c for i, c in enumerate(name))
    return re.compile(r"{{\s*" + pat + r"\s*\((.*)\)\s*}}")


_PARTITION = _fn("partition")
_WILDCARD = _fn("wildcard")
_SPLIT_LEFT = _fn("splitFromLeft")
_SPLIT_RIGHT = _fn("splitFromRight")
_SLICE_LEFT = _fn("sliceFromLeft")
_SLICE_RIGHT = _fn("sliceFromRight")
_SPLIT = _fn("split")
_LEFT = _fn("left")
_RIGHT = _fn("right")
_RANDOM = _fn("random")
_COMMA = re.compile(r",\s*")
_MAX_I32 = (1 << 31) - 1


def _args(rx: re.Pattern[str], token: str) -> list[str] | None:
    m = rx.search(token)
    if m is None:
        return None
    return _COMMA.split(m.group(1))


def _atoi(s: str) -> int | None:
    s = s.strip(" ")
    if not re.fullmatch(r"[+-]?\d+", s):
        return None
    return int(s)


def _index_int(token: str, args: list[str], kind: int) -> tuple[int, list[int], int, str]:
    if len(args) < 2:
        raise _dest_err(token, ERR_NOT_ENOUGH_ARGS)
    if len(args) > 2:
        raise _dest_err(token, ERR_TOO_MANY_ARGS)
    i = _atoi(args[0])
    n = _atoi(args[1])
    if i is None or n is None or not -(1 << 31) <= n <= _MAX_I32:
        raise _dest_err(token, ERR_INVALID_ARG)
    return kind, [i], n, ""


def _placeholder(token: str) -> tuple[int, list[int], int, str]:
    """(kind, wildcard indexes, int argument, string argument) of a destination token."""
    n = len(token)
    if n > 1 and token[0] == "$":
        tp = _atoi(token[1:]) if token[1:].lstrip("+-").isdigit() else None
        if tp is None:
            return NO_TRANSFORM, [-1], -1, ""
        return WILDCARD, [tp], -1, ""
    if n > 4 and token.startswith("{{") and token.endswith("}}"):
        args = _args(_WILDCARD, token)
        if args is not None:
            if len(args) == 1 and args[0] == "":
                raise _dest_err(token, ERR_NOT_ENOUGH_ARGS)
            if len(args) != 1:
                raise _dest_err(token, ERR_TOO_MANY_ARGS)
            i = _atoi(args[0])
            if i is None:
                raise _dest_err(token, ERR_INVALID_ARG)
            return WILDCARD, [i], -1, ""
        args = _args(_PARTITION, token)
        if args is not None:
            num = _atoi(args[0])
            if num is None or num > _MAX_I32:
                raise _dest_err(token, ERR_INVALID_ARG)
            idx = []
            for a in args[1:]:
                i = _atoi(a)
                if i is None:
                    raise _dest_err(token, ERR_INVALID_ARG)
                idx.append(i)
            return PARTITION, idx, num, ""
        for rx, kind in ((_SPLIT_LEFT, SPLIT_LEFT), (_SPLIT_RIGHT, SPLIT_RIGHT), (_SLICE_LEFT, SLICE_LEFT),
                         (_SLICE_RIGHT, SLICE_RIGHT), (_RIGHT, RIGHT), (_LEFT, LEFT)):  # fmt: skip
            args = _args(rx, token)
            if args is not None:
                return _index_int(token, args, kind)
        args = _args(_SPLIT, token)
        if args is not None:
            if len(args) < 2:
                raise _dest_err(token, ERR_NOT_ENOUGH_ARGS)
            if len(args) > 2:
                raise _dest_err(token, ERR_TOO_MANY_ARGS)
            i = _atoi(args[0])
            if i is None or " " in args[1] or "." in args[1]:
                raise _dest_err(token, ERR_INVALID_ARG)
            return SPLIT, [i], -1, args[1]
        args = _args(_RANDOM, token)
        if args is not None:
            if len(args) != 1:
                raise _dest_err(token, ERR_NOT_ENOUGH_ARGS)
            num = _atoi(args[0])
            if num is None or num > _MAX_I32:
                raise _dest_err(token, ERR_INVALID_ARG)
            return RANDOM, [], num, ""
        raise _dest_err(token, ERR_UNKNOWN_FUNCTION)
    return NO_TRANSFORM, [-1], -1, ""


def _subject_info(subject: str) -> tuple[bool, list[str], int, bool]:
    if not subject:
        return False, [], 0, False
    npwcs = 0
    fwc = False
    tokens = subject.split(".")
    for t in tokens:
        if not t or fwc:
            return False, [], 0, False
        if t == ">":
            fwc = True
        elif t == "*":
            npwcs += 1
    return True, tokens, npwcs, fwc


class StreamTransform:
    """`src` -> `dest`. `match(subject)` gives the new subject or None when `src` does not match."""

    __slots__ = ("src", "dest", "_stoks", "_dtoks", "_kinds", "_idx", "_ints", "_strs", "_identity")

    def __init__(self, src: str, dest: str) -> None:
        if not src:
            src = ">"
        ok_s, stokens, npwcs, s_fwc = _subject_info(src)
        ok_d, dtokens, dnpwcs, d_fwc = _subject_info(dest)
        if not ok_s or not ok_d or dnpwcs > 0 or s_fwc != d_fwc:
            raise TransformError(ERR_BAD_SUBJECT)
        self.src = src
        self.dest = dest
        self._stoks = stokens
        self._dtoks = dtokens
        self._kinds: list[int] = []
        self._idx: list[list[int]] = []
        self._ints: list[int] = []
        self._strs: list[str] = []
        if npwcs > 0 or s_fwc:
            sti: dict[int, int] = {}
            for i, t in enumerate(stokens):
                if t == "*":
                    sti[len(sti) + 1] = i
            for token in dtokens:
                kind, wcs, iarg, sarg = _placeholder(token)
                if kind in (NO_TRANSFORM, RANDOM):
                    self._add(kind, [-1] if kind == NO_TRANSFORM else [], iarg, "")
                    continue
                stis = []
                for w in wcs:
                    if w > npwcs:
                        raise _dest_err(f"{token}: [{w}]", ERR_INDEX_RANGE)
                    stis.append(sti.get(w, 0))
                self._add(kind, stis, iarg, sarg)
        else:
            for token in dtokens:
                kind, _, iarg, _ = _placeholder(token)
                if kind == NO_TRANSFORM:
                    self._add(kind, [-1], -1, "")
                elif kind in (RANDOM, PARTITION):
                    self._add(kind, [], iarg, "")
                else:
                    raise _dest_err(token, ERR_INDEX_RANGE)
        self._identity = src == ">" and dest in (">", "")

    def _add(self, kind: int, idx: list[int], iarg: int, sarg: str) -> None:
        self._kinds.append(kind)
        self._idx.append(idx)
        self._ints.append(iarg)
        self._strs.append(sarg)

    def match(self, subject: str) -> str | None:
        if self._identity:
            return subject
        tokens = subject.split(".")
        if any(not t or t in ("*", ">") for t in tokens):
            return None
        if self.src != ">" and not is_subset_match(subject, self.src):
            return None
        return self.transform_tokens(tokens)

    def transform_tokens(self, tokens: list[str]) -> str:
        if not self._kinds:
            return self.dest
        out: list[str] = []
        last = len(self._kinds) - 1
        dtoks = self._dtoks
        for i, kind in enumerate(self._kinds):
            if kind == NO_TRANSFORM:
                if dtoks[i] == ">":
                    break
                out.append(dtoks[i])
            elif kind == WILDCARD:
                idx = self._idx[i]
                if idx and idx[0] < len(tokens):
                    out.append(tokens[idx[0]])
            elif kind == PARTITION:
                idx = self._idx[i]
                key = "".join(tokens[j] for j in idx) if idx else ".".join(tokens)
                n = self._ints[i]
                out.append("0" if n == 0 else str(_fnv32a(key.encode()) % n))
            elif kind == RANDOM:
                n = self._ints[i]
                out.append("0" if n == 0 else str(random.randrange(1 << 31) % n))
            else:
                out.append(self._apply(kind, tokens[self._idx[i][0]], self._ints[i], self._strs[i]))
            if i < last:
                out.append(".")
        if dtoks[-1] == ">":
            out.append(".".join(tokens[len(self._stoks) - 1:]))
        return "".join(out)

    @staticmethod
    def _apply(kind: int, tok: str, n: int, delim: str) -> str:
        size = len(tok)
        if kind == SPLIT_LEFT:
            return f"{tok[:n]}.{tok[n:]}" if 0 < n < size else tok
        if kind == SPLIT_RIGHT:
            return f"{tok[:size - n]}.{tok[size - n:]}" if 0 < n < size else tok
        if kind == SLICE_LEFT:
            if not 0 < n < size:
                return tok
            return ".".join(tok[i:i + n] for i in range(0, size, n))
        if kind == SLICE_RIGHT:
            if not 0 < n < size:
                return tok
            rem = size % n
            parts = [tok[:rem]] if rem else []
            parts += [tok[i:i + n] for i in range(rem, size, n)]
            return ".".join(parts)
        if kind == SPLIT:
            return ".".join(p for p in tok.split(delim) if p)
        if kind == LEFT:
            return tok[:n] if 0 < n < size else tok
        if kind == RIGHT:
            return tok[size - n:] if 0 < n < size else tok
        return tok


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def new_transform(src: str, dest: str) -> StreamTransform | None:
    """NewSubjectTransform: None when `dest` is empty (nothing to do)."""
    if not dest:
        return None
    return StreamTransform(src, dest)


def validate_mapping(src: str, dest: str) -> None:
    """ValidateMapping: raises TransformError with nats-server's text."""
    if not dest:
        return
    fwc = False
    for t in dest.split("."):
        n = len(t)
        if n == 0 or fwc:
            raise _dest_err(t, ERR_INVALID_TRANSFORM)
        if n > 4 and t.startswith("{{") and t.endswith("}}"):
            if not any(rx.search(t) for rx in (_PARTITION, _WILDCARD, _SPLIT_LEFT, _SPLIT_RIGHT, _SLICE_LEFT,
                                                _SLICE_RIGHT, _SPLIT, _RANDOM)):  # fmt: skip
                raise _dest_err(t, ERR_UNKNOWN_FUNCTION)
            continue
        if t == ">":
            fwc = True
        elif any(c in t for c in "\t\n\f\r "):
            raise TransformError(ERR_INVALID_TRANSFORM)
    StreamTransform(src, dest)
