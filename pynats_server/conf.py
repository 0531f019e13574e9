"""The nats-server configuration file format (sans-IO apart from reading include files).

`parse(text)` / `parse_file(path)` give plain Python values: str, bool, int, float,
datetime (UTC), dict and list. `parse_tokens` / `parse_file_tokens` give the same tree with
every value wrapped in a `Token` (source file, line, column, whether it was referenced as a
`$variable`), which the options layer needs for nats-server's `file:line:col: ...` messages.

The grammar is nats-server's conf/lex.go + conf/parse.go, quirks included: key and value may
be separated by `=`, `:` or whitespace (even a newline); entries end at a newline, `,` or
`;`; an unquoted value that starts with a digit is a number, a size (`2MB`), a datetime, an
IP address or else a string; `$NAME` is a variable only as a whole unquoted value; a file
may be wrapped in `{ }` like JSON. Error messages are nats-server's.

Deliberate differences: an integer with a malformed size suffix (`1kbb`) or one that overflows
int64 once scaled is an error (nats-server silently drops the key, or wraps); a key with no
value before a map's `}` is an error (nats-server then misfiles keys); an include cycle is an
error (nats-server overflows its stack).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

__all__ = ["ConfError", "Token", "digest", "parse", "parse_file", "parse_file_tokens",
           "parse_tokens", "unwrap"]  # fmt: skip


class ConfError(ValueError):
    """A configuration file that nats-server would reject, with nats-server's message."""


@dataclass(eq=False)
class Token:
    """A parsed value and where its key (or, in an array, the value itself) was."""

    value: Any  # str | bool | int | float | datetime | dict[str, Token] | list[Token]
    line: int
    col: int
    file: str = ""
    used: bool = False  # referenced as a $variable somewhere later

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def unwrap(value: Any) -> Any:
    """Tokens (and dicts/lists of tokens) -> plain values."""
    if isinstance(value, Token):
        value = value.value
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def parse_tokens(
    text: str, *, path: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Token]:
    env = os.environ if env is None else env
    return _Parser(text, path or "", env, set(), ()).document()


def parse(text: str, *, path: str | None = None, env: Mapping[str, str] | None = None) -> dict:
    return unwrap(parse_tokens(text, path=path, env=env))


def parse_file_tokens(path: str, *, env: Mapping[str, str] | None = None) -> dict[str, Token]:
    env = os.environ if env is None else env
    return _parse_file(path, env, ())


def parse_file(path: str, *, env: Mapping[str, str] | None = None) -> dict:
    return unwrap(parse_file_tokens(path, env=env))


def digest(mapping: Mapping[str, Any]) -> str:
    """nats-server 2.14's `sha256:...` of a parsed configuration (printed by `-t`)."""
    data = _go_json(mapping) + "\n"
    return "sha256:" + hashlib.sha256(data.encode("utf-8", "surrogateescape")).hexdigest()


# -- implementation -------------------------------------------------------------------------

_SIZES = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5, "e": 1000**6}
for _n, _p in enumerate("kmgtpe", 1):
    for _s in ("b", "i", "ib"):
        _SIZES[_p + _s] = 1024**_n
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_SUFFIX = "kKmMgGtTpPeE"
_NL = "\n\r"
_WS = " \t"
_LATIN1_SPACES = set("\t\n\v\f\r \x85\xa0")
_HEX2 = re.compile(r"[0-9a-fA-F]{2}\Z")
_DATE_FORM = "00-00T00:00:00Z"  # after "YYYY-"; 0 stands for a digit
_INT64 = 1 << 63


def _isspace(c: str) -> bool:  # Go's unicode.IsSpace
    return c in _LATIN1_SPACES or (c > "\xff" and c.isspace())


def _isdigit(c: str) -> bool:  # Go's unicode.IsDigit
    return c != "" and c.isdecimal()


def _is(c: str, chars: str) -> bool:  # c is a character (not EOF) among chars
    return c != "" and c in chars


def _show(c: str) -> str:  # how the Go lexer prints a rune in messages
    return "\\n" if c == "\n" else c


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except IsADirectoryError:
        raise ConfError(f"read {path}: is a directory") from None
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ConfError(f"open {path}: {reason}") from None


def _parse_file(path: str, env: Mapping[str, str], chain: tuple[str, ...]) -> dict[str, Token]:
    return _Parser(_read(path), path, env, set(), chain).document()


class _EOF(Exception):
    """The Go lexer's quiet end of input (e.g. inside an empty quoted string); the argument,
    if any, is the length of escaped text nats-server subtracts from the reported column."""


class _Parser:
    def __init__(
        self,
        text: str,
        path: str,
        env: Mapping[str, str],
        env_refs: set[str],
        chain: tuple[str, ...],
    ) -> None:
        self.s = text
        self.i = 0
        self.path = path
        self.dir = posixpath.dirname(path) or "."
        self.env = env
        self.env_refs = env_refs  # environment variables being expanded (cycle detection)
        self.chain = (*chain, os.path.realpath(path)) if path else chain
        self.ctxs: list[dict[str, Token] | list[Token]] = []
        self.last_key: str | None = None  # set while the latest item is a key

    # -- characters

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        c = self.peek()
        if c:
            self.i += 1
        return c

    def back(self, c: str) -> None:
        if c:
            self.i -= 1

    def line_at(self, i: int) -> int:
        return 1 + self.s.count("\n", 0, i)

    def col_at(self, i: int) -> int:  # nats-server's: 0-based on line 1, 1-based after
        return i - max(self.s.rfind("\n", 0, i), 0)

    def error(self, msg: str) -> ConfError:
        return ConfError(f"Parse error on line {self.line_at(self.i)}: '{msg}'")

    def token(self, value: Any, i: int) -> Token:
        self.last_key = None
        return Token(value, self.line_at(i), self.col_at(i), self.path)

    def comment(self) -> None:
        while self.peek() and self.peek() not in _NL:
            self.i += 1

    def slash_comment(self) -> bool:
        """After a '/': a `//` comment is skipped (True); a lone '/' is left consumed."""
        if self.peek() == "/":
            self.i += 1
            self.comment()
            return True
        return False

    # -- document structure

    def document(self) -> dict[str, Token]:
        root: dict[str, Token] = {}
        self.ctxs = [root]
        pending = 0
        try:
            self.top(block=False)
        except _EOF as e:
            pending = e.args[0] if e.args else 0
        except RecursionError:
            where = f" ({self.path})" if self.path else ""
            raise ConfError(f"configuration nested too deeply{where}") from None
        if self.last_key is not None and self.last_key != "}":
            eof = len(self.s)
            col = self.col_at(eof) - pending
            raise ConfError(f"config is invalid ({self.path}:{self.line_at(eof)}:{col})")
        return root

    def top(self, block: bool) -> None:
        """Entries at the top level, or (block) inside a `{ }` wrapping top-level entries."""
        after_block = False  # lexBlockEnd: only `}`, `,`/`;` or a comment may follow
        while True:
            c = self.next()
            if after_block:
                if c == "}":
                    return
                if c == "#" or (c == "/" and self.slash_comment()):
                    self.comment()
                    after_block = False
                elif _is(c, ";,"):
                    after_block = False
                elif not (_isspace(c) or c == "/"):
                    raise self.error(
                        f"Expected a block-level to end with a '}}', but got '{_show(c)}' instead."
                    )
                continue
            if c == "":
                raise _EOF
            if _isspace(c):
                continue
            if c == "{":
                self.top(block=True)
                after_block = block
                continue
            if block and c == "}":
                return
            if c == "#":
                self.comment()
                continue
            if c == "/":
                if self.slash_comment():
                    continue
                raise self.error("Unexpected EOF.")
            self.back(c)
            self.entry(in_map=False)
            if self.value_end(block):
                return

    def value_end(self, block: bool) -> bool:
        """After a top-level (or block-level) value: the rest of the line. True when a `}`
        closes the block."""
        while True:
            c = self.next()
            if c == "#" or (c == "/" and self.slash_comment()):
                self.comment()
                if not block:
                    return False
            elif _is(c, " \t/"):
                continue
            elif _is(c, "\n\r;,") or (c == "" and not block):
                return False
            elif c == "}":
                return block
            else:
                what = "block-level" if block else "top-level"
                raise self.error(
                    f"Expected a {what} value to end with a new line, comment or EOF, "
                    f"but got '{_show(c)}' instead."
                )

    # -- keys

    def entry(self, in_map: bool) -> None:
        """A key (or `include`), its separator and its value, stored in the current map."""
        c = self.peek()
        if c in ("=", ":"):
            raise self.error(f"Unexpected key separator '{c}'" + ("." if in_map else ""))
        if c in ("'", '"'):
            self.i += 1
            start = self.i
            while self.peek() != c:
                if not self.peek():
                    if in_map:
                        kind = "quoted" if c == "'" else "double quoted"
                        raise self.error(f"Unexpected EOF processing {kind} map key.")
                    if self.i > start:
                        raise self.error("Unexpected EOF.")
                    raise _EOF
                self.i += 1
            key = self.s[start : self.i]
            self.i += 1
        else:
            start = self.i
            self.i += 1  # the first character is part of the key, whatever it is
            while True:
                c = self.peek()
                if c == "" and in_map:
                    raise self.error("Unexpected EOF processing map key.")
                if c == "" or c in "=:" or _isspace(c):
                    break
                self.i += 1
            key = self.s[start : self.i]
            if _isspace(c) and key.lower() == "include":
                self.include()
                return
        self.last_key = key
        key_at = start
        # The separator: `=`, `:` or whitespace (newlines too).
        while True:
            c = self.next()
            if _isspace(c):
                continue
            if _is(c, "=:"):
                break
            if c == "" and not in_map:
                raise _EOF
            self.back(c)
            break
        if in_map:
            while _isspace(self.peek()):
                self.i += 1
            c = self.peek()
            if c == ",":
                self.i += 1
                raise self.error('Unexpected map value terminator ",".')
            if c == "}":
                self.i += 1
                raise self.error(f"Expected a value for key '{key}' but got '}}'.")
        tok = self.value()
        self.store(key, Token(tok.value, self.line_at(key_at), self.col_at(key_at), self.path))

    def store(self, key: str, tok: Token) -> None:
        ctx = self.ctxs[-1]
        assert isinstance(ctx, dict)
        ctx[key] = tok

    def include(self) -> None:
        while _is(self.peek(), _WS):
            self.i += 1
        c = self.next()
        if c in ("'", '"'):
            start = self.i
            while self.peek() != c:
                if not self.peek():
                    kind = "quoted" if c == "'" else "double quoted"
                    raise self.error(f"Unexpected EOF in {kind} include")
                self.i += 1
            name = self.s[start : self.i]
            self.i += 1
        else:
            for bad, what in (("[", "start of an array"), ("{", "start of a map"),
                              ("(", "start of a block"), ("\\", "escape sequence")):  # fmt: skip
                if c == bad:
                    raise self.error(f"Expected include value but found {what}")
            if _isdigit(c) or c == "-":
                raise self.error("Expected include value but found start of a number")
            if _is(c, _NL):
                raise self.error("Expected include value but found new line")
            self.back(c)
            start = self.i
            while self.peek() and not _is(self.peek(), "\n\r;} \t'"):
                self.i += 1
            name = self.s[start : self.i]
            if self.peek() == "'":
                self.i += 1
        self.last_key = None
        path = posixpath.normpath(f"{self.dir}/{name}")
        if "\x00" in path:  # Go's open() refuses it with EINVAL (found by fuzzing)
            raise ConfError(f"error parsing include file '{name}', open {path}: invalid argument")
        if os.path.realpath(path) in self.chain:
            raise ConfError(f"error parsing include file '{name}', include cycle through {path}")
        try:
            included = _parse_file(path, self.env, self.chain)
        except ConfError as e:
            raise ConfError(f"error parsing include file '{name}', {e}") from None
        for key, tok in included.items():
            self.store(key, tok)

    # -- values

    def value(self) -> Token:
        while _is(self.peek(), _WS):
            self.i += 1
        start = self.i
        c = self.next()
        if c == "[":
            return self.array(start)
        if c == "{":
            return self.map(start)
        if c == "'":
            return self.token(self.raw_string(), start)
        if c == '"':
            return self.token(self.escaped_string(), start)
        if c == "-":
            return self.negative(start)
        if c == "(":
            return self.token(self.block_string(), start)
        if _isdigit(c):
            return self.number(start)
        if c == ".":
            raise self.error("Floats must start with a digit")
        if _is(c, _NL):
            raise self.error("Expected value but found new line")
        self.back(c)
        return self.unquoted(start)

    def array(self, start: int) -> Token:
        items: list[Token] = []
        self.last_key = None
        self.ctxs.append(items)
        while True:
            c = self.next()
            if _isspace(c):
                continue
            if c == "#" or (c == "/" and self.slash_comment()):
                self.comment()
                continue
            if _is(c, ",/"):
                raise self.error("Unexpected array value terminator ','.")
            if c == "]":
                break
            self.back(c)
            items.append(self.value())
            if self.item_end("]", "/,\n\r", "an array value terminator", "an array terminator"):
                break
        self.ctxs.pop()
        return self.token(items, start)

    def item_end(self, close: str, seps: str, sep_name: str, close_name: str) -> bool:
        """After an array or map value: True at `close`, False after a separator."""
        while True:
            c = self.next()
            if _is(c, _WS):
                continue
            if c == "#" or (c == "/" and self.slash_comment()):
                self.comment()
                continue
            if _is(c, seps):
                return False
            if c == close:
                return True
            raise self.error(
                f'Expected {sep_name} "," or {close_name} "{close}", but got \'{_show(c)}\' instead.'
            )

    def map(self, start: int) -> Token:
        items: dict[str, Token] = {}
        self.last_key = None
        self.ctxs.append(items)
        while True:
            c = self.peek()
            if _is(c, "=:"):
                raise self.error(f"Unexpected key separator '{c}'.")
            if c == "]":
                raise self.error("Unexpected array end ']' processing map.")
            if c == "":
                raise self.error("Unexpected EOF processing map.")
            self.i += 1
            if _isspace(c):
                continue
            if c == "}":
                break
            if c == "#":
                self.comment()
                continue
            if c == "/":
                if self.slash_comment():
                    continue
                # nats-server drops the lone '/' and starts the key after it
            else:
                self.i -= 1
            self.entry(in_map=True)
            if self.item_end("}", "/;,\n\r", "a map value terminator", "a map terminator"):
                break
        self.ctxs.pop()
        return self.token(items, start)

    def raw_string(self) -> str:
        start = self.i
        while (c := self.next()) != "'":
            if c == "":
                if self.i > start:
                    raise self.error("Unexpected EOF.")
                raise _EOF
        return self.s[start : self.i - 1]

    def escaped_string(self) -> str:
        parts: list[str] = []
        seg = self.i
        while True:
            c = self.next()
            if c == "\\":
                parts.append(self.s[seg : self.i - 1])
                parts.append(self.escape())
                seg = self.i
            elif c == '"':
                parts.append(self.s[seg : self.i - 1])
                return _join(parts)
            elif c == "":
                if self.i > seg:
                    raise self.error("Unexpected EOF.")
                raise _EOF(len(_join(parts)))  # Go counts escapes read so far in the column

    def escape(self) -> str:
        c = self.next()
        simple = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}
        if _is(c, 'tnr"\\'):
            return simple[c]
        if c != "x":
            raise self.error(
                f"Invalid escape character '{_show(c)}'. Only the following escape characters "
                'are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.'
            )
        for _ in range(2):
            if _is(self.next(), _NL):
                raise self.error("Expected two hexadecimal digits after '\\x', but hit end of line")
        digits = self.s[self.i - 2 : self.i]
        if not _HEX2.match(digits):
            raise self.error(f"Expected two hexadecimal digits after '\\x', but got '{digits}'")
        b = int(digits, 16)
        return chr(b) if b < 0x80 else chr(0xDC00 + b)  # a raw byte, as surrogateescape

    def block_string(self) -> str:
        """`( ... )`: everything up to a `)` alone on its line."""
        start = self.i
        while True:
            c = self.next()
            if c == "":
                raise self.error("Unexpected EOF processing block.")
            if c != ")" or self.s[self.i - 2] != "\n":
                continue
            after = self.peek()
            if after == "\n":
                return self.s[start : self.i - 1]
            if after == "":
                # At the very end of the input nats-server keeps the ')'.
                return self.s[start : self.i]

    def unquoted(self, start: int) -> Token:
        """An unquoted string, bool or $variable; `start` may be before self.i when a number
        turned out to be a string."""
        parts: list[str] = []
        seg = start
        escaped = False
        while True:
            c = self.peek()
            if c == "\\":
                parts.append(self.s[seg : self.i])
                self.i += 1
                parts.append(self.escape())
                seg = self.i
                escaped = True
                continue
            if c == "" or c in "\n\r;,]} \t":
                parts.append(self.s[seg : self.i])
                text = _join(parts)
                if not escaped and text.lower() in _BOOLS:
                    return self.token(_BOOLS[text.lower()], start)
                if not escaped and text.startswith("$"):
                    return self.variable(text[1:], start)
                return self.token(text, start)
            self.i += 1
            if c == "'":
                parts.append(self.s[seg : self.i - 1])
                return self.token(_join(parts), start)

    def number(self, start: int) -> Token:
        """After a first digit: integer, size, float, datetime, IP address or string."""
        while True:
            c = self.next()
            if _isdigit(c):
                continue
            if c == "-":
                if self.i - start != 5:
                    raise self.error("All ISO8601 dates must be in full Zulu form.")
                return self.datetime(start)
            if c == ".":
                return self.fraction(start)
            if _is(c, _SUFFIX):
                return self.size(start)
            if c == "" or c in "\n\r};, \t":
                self.back(c)
                return self.integer(start)
            return self.unquoted(start)  # c stays part of the string, unexamined

    def negative(self, start: int) -> Token:
        c = self.next()
        if not _isdigit(c):
            if c == ".":
                raise self.error("Floats must start with a digit, not '.'.")
            raise self.error(f"Expected a digit but got '{_show(c)}'.")
        while True:
            c = self.next()
            if _isdigit(c):
                continue
            if c == ".":
                return self.fraction(start)
            if _is(c, _SUFFIX):
                return self.size(start)
            self.back(c)
            return self.integer(start)

    def size(self, start: int) -> Token:
        while _is(self.peek(), "bBiI"):
            self.i += 1
        c = self.peek()
        if c == "" or c in "\n\r};, \t" or _isdigit(c):
            return self.integer(start)
        return self.unquoted(start)

    def integer(self, start: int) -> Token:
        text = self.s[start : self.i]
        n = 0
        while n < len(text) and (_isdigit(text[n]) or text[n] == "-"):
            n += 1
        digits, suffix = text[:n], text[n:].strip().lower()
        if not re.fullmatch(r"-?[0-9]+", digits):
            raise ConfError(f"expected integer, but got '{text}'")
        value = int(digits)
        if not -_INT64 <= value < _INT64:
            raise ConfError(f"integer '{text}' is out of the range")
        if suffix not in _SIZES:
            raise ConfError(f"expected integer, but got '{text}'")
        value *= _SIZES[suffix]
        if not -_INT64 <= value < _INT64:
            raise ConfError(f"integer '{text}' is out of the range")
        return self.token(value, start)

    def fraction(self, start: int) -> Token:
        """After `digits.`: a float, or an IP address / host:port as a string."""
        c = self.next()
        if not _isdigit(c):
            raise self.error(
                f"Floats must have a digit after the '.', but got '{_show(c)}' instead."
            )
        while _isdigit(self.peek()):
            self.i += 1
        if self.peek() == ".":
            while _isdigit(self.peek()) or _is(self.peek(), ".:-"):
                self.i += 1
            return self.token(self.s[start : self.i], start)
        text = self.s[start : self.i]
        try:
            value = float(text) if text.isascii() else float("nan")
        except ValueError:
            value = float("nan")
        if value != value:
            raise ConfError(f"expected float, but got '{text}'")
        if value in (float("inf"), float("-inf")):
            raise ConfError(f"float '{text}' is out of the range")
        return self.token(value, start)

    def datetime(self, start: int) -> Token:
        for want in _DATE_FORM:
            c = self.next()
            if want == "0" and not _isdigit(c):
                raise self.error(
                    f"Expected digit in ISO8601 datetime, but found '{_show(c)}' instead."
                )
            if want != "0" and c != want:
                raise self.error(
                    f"Expected '{want}' in ISO8601 datetime, but found '{_show(c)}' instead."
                )
        text = self.s[start : self.i]
        try:
            when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ConfError(f"expected Zulu formatted DateTime, but got '{text}'") from None
        return self.token(when, start)

    # -- variables

    def variable(self, name: str, start: int) -> Token:
        line = self.line_at(start)
        try:
            found = self.lookup(name)
        except ConfError as e:
            raise ConfError(
                f"variable reference for '{name}' on line {line} could not be parsed: {e}"
            ) from None
        if found is None:
            raise ConfError(f"variable reference for '{name}' on line {line} can not be found")
        return self.token(found, start)

    def lookup(self, name: str) -> Any:
        """The value of $name: a bcrypt hash, a key of an enclosing map, or the environment."""
        if name.startswith("2a$"):
            return "$" + name
        for ctx in reversed(self.ctxs):
            if isinstance(ctx, dict) and name in ctx:
                ctx[name].used = True
                return ctx[name].value
        if name in self.env_refs:
            raise ConfError(f"variable reference cycle for '{name}'")
        if name not in self.env:
            return None
        self.env_refs.add(name)
        try:
            sub = _Parser(f"pk={self.env[name]}", "", self.env, self.env_refs, ())
            tok = sub.document().get("pk")
        finally:
            self.env_refs.discard(name)
        return None if tok is None else tok.value


def _join(parts: list[str]) -> str:
    text = "".join(parts)
    if any("\udc80" <= ch <= "\udcff" for ch in text):  # bytes from \xXX escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    return text


def _go_json(v: Any) -> str:
    """Go's encoding/json for a parsed configuration (sorted keys, HTML-safe escaping)."""
    if isinstance(v, Token):
        return _go_json(v.value)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_str(k)}:{_go_json(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, datetime):
        return _go_str(v.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _go_str(str(v))


def _go_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        out = out.replace(ch, esc)
    # Bytes that are not UTF-8 (kept as surrogates) become the text \ufffd, as in Go.
    return re.sub("[\udc80-\udcff]", lambda _: "\\ufffd", out)


def _go_float(f: float) -> str:
    if f == 0 or 1e-6 <= abs(f) < 1e21:
        text = format(Decimal(repr(f)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return repr(f).replace("e-0", "e-").replace("e+0", "e+")


def config_file_digest(path: str) -> str:
    """nats-server's digest of a configuration file (`sha256:...`), "" if it cannot be read."""
    try:
        return digest(parse_file_tokens(path))
    except (ConfError, OSError):
        return ""
