"""Parser for the transcript files in conformance/cases/*.txt (format: see README.md)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .model import Case, Selector, Step, Template
from .schemas import InfoSpec
from .targets import ServerSpec
from .util import parse_duration

HEADER_KEYS = {
    "group",
    "doc",
    "ref",
    "config",
    "args",
    "cluster",
    "http",
    "server",
    "mode",
    "timeout",
    "targets",
    "listen",
    "quiet",
    "requires",
    "jetstream",
}
TEXT_OPS = {">", ">|", "<", "<|", "<~", "<*"}
WORD_OPS = {
    "<info",
    "expect",
    "close",
    "open",
    "accept",
    "connect",
    "peer",
    "pause",
    "autopong",
    "ignore",
    "observe",
    "let",
    "assert",
    "signal",
    "tls",
    "reload",
}
# `signal NAME`: the signals nats-server's --signal option maps these names to.
SIGNALS = {
    "ldm": "SIGUSR2",
    "term": "SIGTERM",
    "quit": "SIGINT",
    "reload": "SIGHUP",
    "reopen": "SIGUSR1",
}
OPS = TEXT_OPS | WORD_OPS
_CONN_RE = re.compile(r"[a-z][a-z0-9_]*$")
_HEADER_RE = re.compile(r"([a-z_]+):(?:\s(.*)|$)")
DEFAULT_CONN = "c"
CRLF = Template((b"\r\n",))


def _header_key(key: str) -> bool:
    """A known header, or `config_NAME` (another config file text, for `reload config_NAME`)."""
    return key in HEADER_KEYS or re.fullmatch(r"config_[a-z]+", key) is not None


class FormatError(ValueError):
    def __init__(self, path: str, lineno: int, msg: str) -> None:
        super().__init__(f"{path}:{lineno}: {msg}")


@dataclasses.dataclass
class _Headers:
    values: dict[str, str] = dataclasses.field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)


def _with_crlf(t: Template) -> Template:
    return Template(t.parts + CRLF.parts)


def parse_step(text: str, lineno: int, path: str = "<text>") -> Step:
    """Parse one step line: ``[selector] [conn] op [argument]``."""
    src = text
    rest = text.strip()
    selector = None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise FormatError(path, lineno, "unterminated [selector]")
        selector = Selector.parse(rest[: end + 1])
        rest = rest[end + 1 :].lstrip()
    first, _, after = rest.partition(" ")
    conn = DEFAULT_CONN
    if first not in OPS:
        if not _CONN_RE.match(first):
            raise FormatError(path, lineno, f"unknown op or bad connection name {first!r}")
        conn = first
        rest = after.lstrip(" ")
        first, _, after = rest.partition(" ")
        if first not in OPS:
            raise FormatError(path, lineno, f"unknown op {first!r}")
    op = first
    # The argument of a text op is everything after exactly one space (trailing spaces kept).
    raw_arg = rest[len(op) + 1 :] if rest.startswith(op + " ") else ""
    step = Step(lineno=lineno, conn=conn, op=op, selector=selector, source=src.strip())
    try:
        if op == ">":
            step.op, step.arg = "send", _with_crlf(Template.parse(raw_arg))
        elif op == ">|":
            step.op, step.arg = "send", Template.parse(raw_arg)
        elif op == "<":
            step.op, step.arg = "expect_bytes", _with_crlf(Template.parse(raw_arg))
        elif op == "<|":
            step.op, step.arg = "expect_bytes", Template.parse(raw_arg)
        elif op == "<~":
            step.op, step.arg = "expect_regex", raw_arg
        elif op == "<*":
            step.op, step.arg = "expect_unordered", [_with_crlf(Template.parse(raw_arg))]
        elif op == "<info":
            step.op, step.arg = "expect_info", InfoSpec.parse(raw_arg)
        elif op == "expect":
            words = raw_arg.split()
            if words and words[0] == "ignored":
                # `expect ignored REGEX`: a frame dropped by the filters matches (e.g. $SYS)
                step.op = "expect_ignored"
                step.arg = raw_arg.strip()[len("ignored") :].strip()
                re.compile(step.arg)
            elif not words or words[0] not in ("close", "nothing"):
                raise ValueError(
                    "use `expect close [dur]`, `expect nothing [dur]` or `expect ignored REGEX`"
                )
            else:
                step.op = "expect_" + words[0]
                step.arg = parse_duration(words[1]) if len(words) > 1 else None
        elif op == "close":
            step.op = "close"
        elif op == "open":
            kind = raw_arg.strip() or "client"
            if kind not in ("client", "route"):
                raise ValueError("open takes client or route")
            step.arg = kind
        elif op == "accept":
            if not raw_arg.strip():
                raise ValueError("accept needs a listener name")
            step.arg = raw_arg.strip()
        elif op == "connect":
            # `connect [nkey=SEED] [json]`: with nkey=, the INFO nonce is signed with SEED
            # and "nkey"/"sig" are added to the JSON.
            text = raw_arg.strip()
            opts: dict[str, str] = {}
            while text and not text.startswith("{"):
                tok, _, text = text.partition(" ")
                k, eq, v = tok.partition("=")
                if not eq or k not in ("nkey",):
                    raise ValueError(f"connect option {tok!r}: use nkey=SEED")
                opts[k] = v
                text = text.strip()
            step.arg = (Template.parse(text or '{"verbose":false,"pedantic":false}'), opts)
        elif op == "tls":
            # `tls [cert=NAME] [fail] [noverify]` upgrades the connection; `tls hello` only
            # sends a ClientHello record (to see what a plaintext port answers).
            topts: dict[str, str | bool] = {}
            for tok in raw_arg.split():
                k, eq, v = tok.partition("=")
                if eq and k == "cert":
                    topts["cert"] = v
                elif not eq and tok in ("fail", "noverify", "hello"):
                    topts[tok] = True
                else:
                    raise ValueError(f"tls option {tok!r}: cert=NAME, fail, noverify or hello")
            step.arg = topts
        elif op == "peer":
            opts = {}
            for tok in raw_arg.split():
                k, eq, v = tok.partition("=")
                if not eq:
                    raise ValueError(f"peer option {tok!r} must be key=value")
                opts[k] = v
            if opts.get("send", "both") not in ("both", "connect", "info"):
                raise ValueError("peer send= takes both, connect or info")
            step.arg = opts
        elif op == "pause":
            step.arg = parse_duration(raw_arg)
        elif op == "autopong":
            if raw_arg.strip() not in ("on", "off"):
                raise ValueError("autopong on|off")
            step.arg = raw_arg.strip() == "on"
        elif op == "ignore":
            step.arg = re.compile(raw_arg.strip().encode("latin-1"))
        elif op == "observe":
            step.arg = parse_duration(raw_arg) if raw_arg.strip() else None
        elif op == "let":
            name, _, value = raw_arg.partition(" ")
            step.arg = (name, Template.parse(value))
        elif op == "reload":
            # `reload [config_NAME]`: the server's config file becomes that header's text (or
            # stays), then SIGHUP, then wait for the reload's last log line (kept as `reload`).
            name = raw_arg.strip()
            if name and not re.fullmatch(r"config_[a-z]+", name):
                raise ValueError("reload takes nothing or a config_NAME header")
            step.arg = name or None
        elif op == "signal":
            name = raw_arg.strip()
            if name not in SIGNALS:
                raise ValueError(f"signal takes one of {sorted(SIGNALS)}")
            step.arg = SIGNALS[name]
        elif op == "assert":
            m = re.fullmatch(r"(.*?) (==|!=|~) (.*)", raw_arg)
            if not m:
                raise ValueError("use `assert A == B`, `assert A != B` or `assert A ~ REGEX`")
            left, cmp, right = m.groups()
            step.arg = (Template.parse(left), cmp, right if cmp == "~" else Template.parse(right))
    except (ValueError, re.error) as exc:
        raise FormatError(path, lineno, str(exc)) from None
    return step


def _merge_unordered(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for st in steps:
        prev = out[-1] if out else None
        if (
            st.op == "expect_unordered"
            and prev is not None
            and prev.op == "expect_unordered"
            and prev.conn == st.conn
            and prev.selector == st.selector
        ):
            prev.arg = prev.arg + st.arg
            continue
        out.append(st)
    return out


def _build_case(
    group: str, name: str, origin: str, hdr: _Headers, steps: list[Step], path: str, lineno: int
) -> Case:
    case = Case(name=f"{group}.{name}", group=group, origin=origin)
    case.doc = hdr.get("doc")
    case.ref = hdr.get("ref")
    args = tuple(hdr.get("args").split())
    cluster = hdr.get("cluster")
    config = hdr.values.get("config")
    case.spec = ServerSpec(
        args=args,
        config=(config.strip() + "\n") if config else None,
        cluster=bool(cluster) and cluster != "no",
        cluster_name=cluster if cluster and cluster not in ("yes", "no") else "CONF",
        http=hdr.get("http") == "yes",
        jetstream=hdr.get("jetstream") == "yes",
    )
    requires = {x.strip() for x in hdr.get("requires").replace(",", " ").split() if x.strip()}
    if case.spec.jetstream:
        requires.add("jetstream")
    case.requires = frozenset(requires)
    server = hdr.get("server", "shared")
    if server not in ("shared", "private"):
        raise FormatError(path, lineno, "server: shared|private")
    # A JetStream server keeps streams between cases: each case gets its own.
    case.private = server == "private" or case.spec.jetstream
    mode = hdr.get("mode")
    if mode not in ("", "differential"):
        raise FormatError(path, lineno, "mode: differential")
    case.differential = mode == "differential"
    if hdr.get("timeout"):
        case.timeout = parse_duration(hdr.get("timeout"))
    if hdr.get("quiet"):
        case.quiet = parse_duration(hdr.get("quiet"))
    if hdr.get("targets"):
        case.targets = Selector.parse(hdr.get("targets"))
    if hdr.get("listen"):
        case.listeners = tuple(x.strip() for x in hdr.get("listen").split(",") if x.strip())
        case.private = True  # the server's args refer to this case's listener ports
    case.steps = _merge_unordered(steps)
    case.configs = {k: v.strip() + "\n" for k, v in hdr.values.items() if k.startswith("config_")}
    for st in case.steps:
        if st.op == "reload":
            if st.arg is not None and st.arg not in case.configs:
                raise FormatError(path, st.lineno, f"no {st.arg}: header in this case")
            if case.spec.config is None:
                raise FormatError(path, st.lineno, "reload needs a config: header (the file it reads again)")
            # The server reads its own copy of the file, which the case rewrites.
            case.private = True
            case.spec = dataclasses.replace(case.spec, own_config=True)
    if not case.steps:
        raise FormatError(path, lineno, f"case {name!r} has no steps")
    return case


def parse_text(text: str, path: str = "<text>", default_group: str = "misc") -> list[Case]:
    """Parse a whole transcript file into cases."""
    lines = text.splitlines()
    file_hdr = _Headers()
    cases: list[Case] = []
    cur_name: str | None = None
    cur_line = 0
    hdr = _Headers()
    steps: list[Step] = []
    group = default_group
    i = 0

    def finish() -> None:
        if cur_name is not None:
            merged = _Headers({**file_hdr.values, **hdr.values})
            merged.values.pop("group", None)
            cases.append(
                _build_case(group, cur_name, f"{path}:{cur_line}", merged, steps, path, cur_line)
            )

    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("==="):
            finish()
            cur_name = stripped[3:].strip()
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", cur_name or ""):
                raise FormatError(path, lineno, f"bad case name {cur_name!r}")
            cur_line = lineno
            hdr = _Headers()
            steps = []
            continue
        m = _HEADER_RE.match(line)
        if m and _header_key(m.group(1)) and (cur_name is None or not steps):
            key, value = m.group(1), (m.group(2) or "").strip()
            if value == "|":  # indented block
                block: list[str] = []
                while i < len(lines) and (lines[i].startswith("  ") or not lines[i].strip()):
                    block.append(lines[i][2:])
                    i += 1
                value = "\n".join(block).strip("\n")
            target = file_hdr if cur_name is None else hdr
            if key == "doc" and key in target.values:
                value = target.values[key] + " " + value
            target.values[key] = value
            if key == "group" and cur_name is None:
                group = value
            continue
        if cur_name is None:
            raise FormatError(path, lineno, "step outside a case (start one with `=== name`)")
        steps.append(parse_step(line, lineno, path))
    finish()
    names = [c.name for c in cases]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        raise FormatError(path, 0, f"duplicate case names {sorted(dups)}")
    return cases


def load_dir(directory: Path) -> list[Case]:
    cases: list[Case] = []
    for p in sorted(directory.glob("*.txt")):
        cases += parse_text(p.read_text(), str(p.relative_to(directory.parent.parent)), p.stem)
    return cases
