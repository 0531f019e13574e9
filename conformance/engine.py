"""Runs a transcript case's steps against a server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import ssl
import time

from . import nkeyutil
from .conn import Conn, Mismatch
from .context import SYS_RE, CaseContext, RawJSON, certs_for
from .model import Step, Template, render_regex
from .schemas import check_info, default_values, normalise_output
from .targets import HOST, ServerError

PEER_VERSION = "2.9.10"


class StepError(Exception):
    """A step failed: carries the transcript line for the report."""

    def __init__(self, step: Step, mismatch: Mismatch) -> None:
        super().__init__(mismatch.render())
        self.step = step
        self.mismatch = mismatch

    def render(self) -> str:
        return f"line {self.step.lineno}: `{self.step.source}`\n    {self.mismatch.render()}"


async def run_transcript(ctx: CaseContext) -> None:
    target = ctx.target
    for lst in ctx.case.listeners:
        if lst not in ctx.listeners:
            await ctx.listener(lst)
    # Consecutive sends to one connection go out as a single write, so that how the server's
    # reads split the bytes does not depend on timing; `pause` separates writes on purpose.
    outbox: list[tuple[Step, bytearray]] = []

    async def flush() -> None:
        if outbox:
            first, data = outbox[0]
            outbox.clear()
            try:
                conn = await _conn(ctx, first.conn)
                await conn.send(bytes(data))
            except Mismatch as exc:
                raise StepError(first, exc) from None

    for step in ctx.case.steps:
        if step.selector is not None and not step.selector.matches(target.name, target.profile):
            continue
        if step.op == "send":
            try:
                data = _render(ctx, step.arg)
            except Mismatch as exc:
                raise StepError(step, exc) from None
            if outbox and outbox[0][0].conn != step.conn:
                await flush()
            if outbox:
                outbox[0][1].extend(data)
            else:
                outbox.append((step, bytearray(data)))
            continue
        await flush()
        try:
            await _run_step(ctx, step)
        except Mismatch as exc:
            raise StepError(step, exc) from None
    await flush()
    if ctx.case.differential:
        for name, conn in ctx.conns.items():
            ctx.observed.append((name, normalise_output(await conn.collect(ctx.case.quiet))))


async def _conn(
    ctx: CaseContext, name: str, kind: str = "client", tls: ssl.SSLContext | None = None
) -> Conn:
    if name in ctx.conns:
        return ctx.conns[name]
    assert ctx.server is not None
    port = ctx.server.client_port if kind == "client" else ctx.server.cluster_port
    if not port and kind == "route":
        # A route listener from the config file or from `args:` (--cluster URL): nats-server
        # (2.9 for --cluster) logs it after "Server is ready".
        with contextlib.suppress(ServerError):
            await ctx.server.wait_log(r"Listening for route connections on", ctx.timeout)
        port = ctx.server.cluster_port
    if not port:
        raise Mismatch(f"the server has no {kind} port (case needs `cluster: yes`?)", conn=name)
    c = await Conn.open(name, HOST, port, ctx.timeout, tls=tls)
    if kind == "route":
        _route_defaults(c)
    ctx.conns[name] = c
    ctx.conn_kind[name] = kind
    return c


def _route_defaults(c: Conn) -> None:
    """Route connections drop the system account's interest and messages ($SYS)."""
    c.ignore.append(SYS_RE)


def _render(ctx: CaseContext, t: Template) -> bytes:
    return t.render(ctx.var)


async def _run_step(ctx: CaseContext, step: Step) -> None:
    op = step.op
    if op == "open":
        if step.conn in ctx.conns:
            raise Mismatch(f"connection {step.conn} is already open")
        await _conn(ctx, step.conn, step.arg)
        return
    if op == "accept":
        lst = ctx.listeners.get(step.arg)
        if lst is None:
            raise Mismatch(f"no listener {step.arg!r} (declare it with `listen: {step.arg}`)")
        c = await lst.accept(step.conn, ctx.timeout + 3)
        _route_defaults(c)
        ctx.conns[step.conn] = c
        ctx.conn_kind[step.conn] = "accepted"
        ctx.conn_listener[step.conn] = lst.name
        return
    if op == "pause":
        await asyncio.sleep(step.arg)
        return
    if op == "let":
        name, tmpl = step.arg
        ctx.vars[name] = _render(ctx, tmpl).decode("latin-1")
        return
    if op == "signal":
        if ctx.server is None:
            raise Mismatch("no server to signal")
        if not ctx.case.private:
            raise Mismatch("`signal` needs `server: private`")
        ctx.server.send_signal(getattr(signal, step.arg))
        return
    if op == "reload":
        if ctx.server is None:
            raise Mismatch("no server to reload")
        text = None
        if step.arg is not None:
            text = ctx.case.configs[step.arg]
            if "{{" in text:  # as the config: header (runner._fill_spec)
                text = Template.parse(text).render(ctx.var).decode()
        try:
            ctx.vars["reload"] = await ctx.server.reload(text, ctx.timeout + 3)
        except ServerError as exc:
            raise Mismatch(f"the reload did not finish: {exc}") from None
        return
    if op == "assert":
        left_t, cmp, right_t = step.arg
        left = _render(ctx, left_t).decode("latin-1")
        if cmp == "~":
            pattern = render_regex(right_t, ctx.var)
            if not re.fullmatch(pattern, left):
                raise Mismatch("assertion failed", f"/{pattern}/", left)
            return
        right = _render(ctx, right_t).decode("latin-1")
        if (left == right) != (cmp == "=="):
            raise Mismatch("assertion failed", ("" if cmp == "==" else "not ") + right, left)
        return

    if op == "tls":
        await _tls(ctx, step)
        return
    conn = await _conn(ctx, step.conn)
    if op == "send":
        await conn.send(_render(ctx, step.arg))
    elif op == "expect_bytes":
        await conn.expect_bytes(_render(ctx, step.arg))
    elif op == "expect_regex":
        m = await conn.expect_regex(render_regex(step.arg, ctx.var))
        ctx.vars.update({k: v for k, v in m.groupdict().items() if v is not None})
    elif op == "expect_unordered":
        await conn.expect_unordered([_render(ctx, t) for t in step.arg])
    elif op == "expect_info":
        await _expect_info(ctx, conn, step)
    elif op == "expect_close":
        await conn.expect_close(step.arg)
    elif op == "expect_ignored":
        pattern = render_regex(step.arg, ctx.var)
        await conn.expect_ignored(re.compile(pattern.encode("latin-1")))
    elif op == "expect_nothing":
        await conn.expect_nothing(step.arg if step.arg is not None else ctx.case.quiet)
    elif op == "close":
        await conn.close()
        del ctx.conns[step.conn]
    elif op == "connect":
        await _connect(ctx, conn, step)
    elif op == "peer":
        await _peer(ctx, conn, step)
    elif op == "autopong":
        conn.autopong = step.arg
    elif op == "ignore":
        conn.add_ignore(step.arg)
    elif op == "observe":
        data = await conn.collect(step.arg if step.arg is not None else ctx.case.quiet)
        ctx.observed.append((step.conn, normalise_output(data)))
    else:  # pragma: no cover - the parser only produces the ops above
        raise Mismatch(f"unknown op {op}")


async def _connect(ctx: CaseContext, conn: Conn, step: Step) -> None:
    """Read INFO (kept as ``info``), send CONNECT + PING, expect PONG.

    ``nkey=SEED``: sign the INFO's nonce with SEED and add "nkey" and "sig" to the JSON.
    """
    tmpl, opts = step.arg
    obj, line = await conn.expect_info()
    ctx.vars["info"] = RawJSON(line[5:-2].decode().strip(), obj)
    body = _render(ctx, tmpl)
    if "nkey" in opts:
        seed = Template.parse(opts["nkey"]).render(ctx.var).decode()
        nonce = obj.get("nonce")
        if not isinstance(nonce, str):
            raise Mismatch("connect nkey=: the INFO has no nonce", b"nonce", line, conn.name)
        try:
            fields = json.loads(body)
        except ValueError:
            raise Mismatch("connect nkey=: the CONNECT JSON does not parse", None, body) from None
        fields["nkey"] = nkeyutil.public_key(seed)
        fields["sig"] = nkeyutil.sign(seed, nonce.encode())
        body = json.dumps(fields, separators=(",", ":")).encode()
    await conn.send(b"CONNECT " + body + b"\r\nPING\r\n")
    await conn.expect_bytes(b"PONG\r\n")


async def _tls(ctx: CaseContext, step: Step) -> None:
    """``tls [cert=NAME] [fail] [noverify]``: upgrade to TLS; ``tls hello``: send a ClientHello.

    ``fail``: the handshake must fail, or complete and then the server closes the connection
    without sending anything (TLS 1.3 servers reject a client certificate after the client's
    side of the handshake is done). The error text is kept as ``tls_error``.
    """
    opts = step.arg
    tls_ctx = certs_for(ctx).client_context(opts.get("cert"), verify=not opts.get("noverify"))
    if opts.get("hello"):
        conn = await _conn(ctx, step.conn)
        await conn.send(client_hello(tls_ctx))
        return
    try:
        if step.conn in ctx.conns:
            await ctx.conns[step.conn].start_tls(tls_ctx)
            conn = ctx.conns[step.conn]
        else:
            # Handshake first: the ClientHello is the first thing sent, and the TLS layer sees
            # whatever the server sends from the start (a plaintext INFO breaks it).
            conn = await _conn(ctx, step.conn, tls=tls_ctx)
    except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as exc:
        ctx.vars["tls_error"] = repr(exc)
        if opts.get("fail"):
            return
        raise Mismatch(f"TLS handshake failed: {exc!r}", conn=step.conn) from None
    if opts.get("fail"):
        try:
            await conn.expect_close()
        except Mismatch as exc:
            raise Mismatch(
                "the TLS handshake was expected to fail (or the server to close at once)",
                b"<handshake failure or EOF>",
                exc.got if isinstance(exc.got, bytes) else None,
                conn.name,
            ) from None
        ctx.vars["tls_error"] = conn.eof_reason


def client_hello(tls_ctx: ssl.SSLContext) -> bytes:
    """The bytes of a TLS ClientHello, made with a memory BIO (no socket)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


async def _expect_info(ctx: CaseContext, conn: Conn, step: Step) -> None:
    spec = step.arg
    if spec.source is not None:
        stored = ctx.vars.get(spec.source)
        if not isinstance(stored, RawJSON):
            raise Mismatch(f"<info from={spec.source}: no INFO stored under that name")
        obj, line = stored.obj, b"INFO " + stored.text.encode() + b" \r\n"
    else:
        obj, line = await conn.expect_info(space_before_crlf=spec.kind != "any")
    values = default_values(spec.kind, ctx.target.profile, _ports(ctx))
    for k, v in spec.values.items():
        text = Template.parse(v).render(ctx.var).decode()
        try:
            values[k] = json.loads(text)
        except ValueError:
            raise Mismatch(f"<info value for {k} is not JSON: {text!r}") from None
    problems = check_info(obj, spec, ctx.target.profile, values)
    if spec.capture:
        ctx.vars[spec.capture] = RawJSON(line[5:-2].decode().strip(), obj)
    if problems:
        raise Mismatch("INFO does not conform: " + "; ".join(problems), None, line, conn.name)


def _ports(ctx: CaseContext) -> dict[str, int]:
    s = ctx.server
    if s is None:
        return {}
    return {"client_port": s.client_port, "cluster_port": s.cluster_port}


def peer_connect(server_id: str, cluster: str, extra: dict[str, object] | None = None) -> bytes:
    """The route CONNECT a fake peer sends (protocol.md 3.8 recommended bytes)."""
    obj: dict[str, object] = {
        "echo": True,
        "verbose": False,
        "pedantic": False,
        "tls_required": False,
        "headers": True,
        "name": server_id,
        "cluster": cluster,
    }
    obj.update(extra or {})
    return b"CONNECT " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def peer_info(
    server_id: str,
    name: str,
    cluster: str,
    port: int,
    connect_urls: list[str] | None = None,
    extra: dict[str, object] | None = None,
) -> bytes:
    """The route INFO a fake peer sends (protocol.md 3.8 recommended bytes)."""
    obj: dict[str, object] = {
        "server_id": server_id,
        "server_name": name,
        "version": PEER_VERSION,
        "proto": 2,
        "go": "python",
        "host": HOST,
        "port": port,
        "headers": True,
        "max_payload": 1048576,
        "cluster": cluster,
    }
    if connect_urls:
        obj["connect_urls"] = connect_urls
    obj.update(extra or {})
    return b"INFO " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


PINNED_REFUSAL = b"-ERR 'Not possible to have a dedicated route for account"


async def _is_pinned_account_refusal(conn: Conn) -> bool:
    """Peek: is the next line 2.14's refusal of a pinned-account ($SYS) route?"""
    deadline = time.monotonic() + conn.timeout
    while b"\n" not in conn.pending and not conn.eof and time.monotonic() < deadline:
        await conn.wait_data(deadline)
    return conn.pending.startswith(PINNED_REFUSAL)


async def _peer(ctx: CaseContext, conn: Conn, step: Step) -> None:
    """Route handshake as a fake peer.

    On a connection we opened: read the server's route INFO (stored as ``srv`` or ``as=``),
    then send CONNECT and INFO. On a connection the server dialled (``accept``): send our INFO
    at once, then read the server's CONNECT (stored as ``<as>_connect``) and its INFO.
    Options: id=, name=, cluster=, port=, urls=a,b, as=, headers=false, user=, pass= (route
    credentials in the CONNECT), and ``send=`` for the peer that sends its handshake in parts
    (opened connections only): ``send=connect`` reads the server's INFO and sends only
    CONNECT; ``send=info`` later sends only the INFO (it reads nothing; its default id= is the
    one the CONNECT had).
    """
    opts = {k: Template.parse(v).render(ctx.var).decode() for k, v in step.arg.items()}
    pid = opts.get("id") or ctx.var(f"id:{step.conn}")
    ctx.vars[f"{step.conn}_id"] = pid
    cluster = opts.get("cluster") or (ctx.server.spec.cluster_name if ctx.server else "CONF")
    name = opts.get("name") or f"peer-{step.conn}-{pid[-6:]}"
    capture = opts.get("as", "srv")
    urls = [u for u in opts.get("urls", "").split(",") if u]
    accepted = ctx.conn_kind.get(step.conn) == "accepted"
    listener_port = 1  # nothing listens there: a server that re-dials us fails at once
    if accepted:
        for lst in ctx.listeners.values():
            listener_port = lst.port
    port = int(opts.get("port", listener_port))
    extra_info: dict[str, object] = {}
    if opts.get("headers") == "false":
        extra_info["headers"] = False
    info = peer_info(pid, name, cluster, port, urls, extra_info)
    creds: dict[str, object] = {k: opts[k] for k in ("user", "pass") if k in opts}
    send = opts.get("send", "both")
    if send != "both" and accepted:
        raise Mismatch("peer send= is for connections the case opened, not accepted ones")
    if send == "info":
        await conn.send(info)
        return
    if accepted:
        lst = ctx.listeners[ctx.conn_listener[step.conn]]
        for _ in range(4):
            await conn.send(info)
            m = await conn.expect_regex(r"CONNECT (\{.*\})")
            ctx.vars[capture + "_connect"] = RawJSON(m.group(1), json.loads(m.group(1)))
            if not await _is_pinned_account_refusal(conn):
                break
            # 2.14 also dials one connection per pinned account ($SYS); a peer without pooling
            # refuses it (the server sends the -ERR and closes). Take the next connection.
            await conn.close()
            conn = await lst.accept(step.conn, ctx.timeout + 3)
            _route_defaults(conn)
            ctx.conns[step.conn] = conn
        obj, line = await conn.expect_info()
        ctx.vars[capture] = RawJSON(line[5:-2].decode().strip(), obj)
    else:
        obj, line = await conn.expect_info()
        ctx.vars[capture] = RawJSON(line[5:-2].decode().strip(), obj)
        await conn.send(peer_connect(pid, cluster, creds) + (info if send == "both" else b""))
