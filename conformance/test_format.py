"""Self-test of the transcript format, the INFO checks and the frame reader (no servers).

Run: .venv/bin/python -m pytest conformance/test_format.py -q
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from conformance.conn import Conn, Mismatch
from conformance.model import Selector, Template, unescape
from conformance.registry import load_all
from conformance.schemas import InfoSpec, check_info, flatten_signature, json_signature
from conformance.transcript import FormatError, parse_step, parse_text


def test_unescape() -> None:
    assert unescape(r"a\r\n\t\s\\\x00\xff") == b"a\r\n\t \\\x00\xff"
    assert unescape("héllo") == "héllo".encode()
    assert unescape(r"\q") == b"\\q"  # unknown escapes stay as they are


def test_template_vars_and_repeat() -> None:
    t = Template.parse('PUB {{subj}} {{"ab"*3}}\\r\\n')
    assert t.render(lambda name: {"subj": "foo"}[name]) == b"PUB foo ababab\r\n"
    assert not t.is_static
    assert Template.parse(r'{{"\r\n"*2}}').render(str) == b"\r\n\r\n"


def test_selector() -> None:
    s = Selector.parse("[go29]")
    assert s.matches("go29", "go29") and not s.matches("pynats", "other")
    n = Selector.parse("[!go29]")
    assert n.matches("go214", "go214") and n.matches("x", "other") and not n.matches("old", "go29")
    assert Selector.parse("[go214,pynats]").matches("pynats", "other")


def test_parse_step_forms() -> None:
    st = parse_step("> PING", 1)
    assert (st.conn, st.op, st.arg.render(str)) == ("c", "send", b"PING\r\n")
    st = parse_step("c2 >| PUB foo 2\\r\\nhi", 1)
    assert (st.conn, st.op, st.arg.render(str)) == ("c2", "send", b"PUB foo 2\r\nhi")
    st = parse_step("[!go29] r1 < RS+ $G foo", 1)
    assert st.selector == Selector.parse("[!go29]") and st.op == "expect_bytes"
    assert st.arg.render(str) == b"RS+ $G foo\r\n"
    assert parse_step("<~ MSG foo (1|2) 2", 1).arg == "MSG foo (1|2) 2"
    assert parse_step("expect nothing 300ms", 1).arg == pytest.approx(0.3)
    assert parse_step("expect close", 1).arg is None
    assert parse_step(">", 1).arg.render(str) == b"\r\n"
    assert parse_step("r1 open route", 1).arg == "route"
    assert parse_step("r1 accept l1", 1).arg == "l1"
    assert parse_step("r1 peer id={{id:x}} name=a", 1).arg == {"id": "{{id:x}}", "name": "a"}
    assert parse_step("r1 peer send=connect", 1).arg == {"send": "connect"}
    with pytest.raises(FormatError):
        parse_step("r1 peer send=ping", 1)
    assert parse_step("autopong off", 1).arg is False
    assert parse_step("signal ldm", 1).arg == "SIGUSR2"
    a = parse_step("assert {{x}} == y", 1).arg
    assert a[1] == "==" and a[2].render(str) == b"y"
    with pytest.raises(FormatError):
        parse_step("frobnicate", 3)
    with pytest.raises(FormatError):
        parse_step("expect soon", 3)


def test_parse_text_cases_headers_and_blocks() -> None:
    text = """# comment
group: g.x
cluster: yes

=== one
doc: first
doc: and more
config: |
  authorization {
    timeout: 0.5
  }
args: --user u --pass p
connect
<* MSG a 1 1\\r\\nx
<* MSG a 2 1\\r\\nx
> PING
< PONG

=== two
server: private
targets: !go29
mode: differential
>| PING\\r\\n
observe
"""
    one, two = parse_text(text, "t.txt")
    assert one.name == "g.x.one" and one.group == "g.x"
    assert one.doc == "first and more"
    assert one.spec.args == ("--user", "u", "--pass", "p")
    assert one.spec.config == "authorization {\n  timeout: 0.5\n}\n"
    assert one.spec.cluster and two.spec.cluster  # file-level header applies to both
    assert [s.op for s in one.steps] == ["connect", "expect_unordered", "send", "expect_bytes"]
    assert len(one.steps[1].arg) == 2  # consecutive <* lines merge
    assert two.private and two.differential and two.targets == Selector.parse("!go29")


def test_parse_text_errors() -> None:
    with pytest.raises(FormatError):
        parse_text("> PING\n", "t.txt")  # step outside a case
    with pytest.raises(FormatError):
        parse_text("=== a\n> PING\n=== a\n> PING\n", "t.txt")  # duplicate
    with pytest.raises(FormatError):
        parse_text("=== a\ndoc: nothing to do\n", "t.txt")  # no steps


def test_info_check() -> None:
    info = {
        "server_id": "N" + "A" * 55,
        "server_name": "n",
        "version": "2.9.10",
        "proto": 1,
        "go": "go1",
        "host": "127.0.0.1",
        "port": 4222,
        "headers": True,
        "max_payload": 1048576,
        "client_id": 4,
        "client_ip": "127.0.0.1",
    }
    spec = InfoSpec.parse("client")
    vals = {"port": 4222, "proto": 1}
    assert check_info(info, spec, "go29", vals) == []
    assert any("missing keys" in p for p in check_info(info, spec, "go214", vals))  # no xkey...
    assert check_info(info, spec, "other", vals) == []
    bad = dict(info, proto="1", zzz=1)
    problems = check_info(bad, spec, "go29", vals)
    assert any("unexpected keys ['zzz']" in p for p in problems)
    assert any(p.startswith("proto: expected integer") for p in problems)
    spec2 = InfoSpec.parse("client max_payload=512 -client_ip +auth_required as=i")
    assert spec2.values == {"max_payload": "512"} and spec2.capture == "i"
    assert "client_ip" in spec2.absent and "auth_required" in spec2.present
    assert InfoSpec.parse('any connect_urls=["a:1", "b:2"]').values == {
        "connect_urls": '["a:1", "b:2"]'
    }


def test_json_signature() -> None:
    sig = json_signature({"a": 1, "b": [{"x": "s"}, {"y": 1.5}], "c": {"d": True}})
    assert flatten_signature(sig) == {
        "a": "number",
        "b": "array",
        "b[].x": "string",
        "b[].y": "number",
        "c": "object",
        "c.d": "bool",
    }
    assert flatten_signature(sig, skip=("c",)) == {
        "a": "number",
        "b": "array",
        "b[].x": "string",
        "b[].y": "number",
        "c": "object",
    }


class _FakeWriter:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b

    def is_closing(self) -> bool:
        return False

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def _conn(chunks: list[bytes], eof: bool = True) -> tuple[Conn, _FakeWriter]:
    reader = asyncio.StreamReader()
    for ch in chunks:
        reader.feed_data(ch)
    if eof:
        reader.feed_eof()
    w = _FakeWriter()
    c = Conn("t", reader, w, timeout=0.5)  # type: ignore[arg-type]
    return c, w


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_conn_frames_autopong_and_ignore() -> None:
    async def main() -> None:
        c, w = _conn([b"PING\r\nMSG a 1 6\r\nPING\r\n\r\nRS+ $SYS x\r\n+OK\r\n"])
        c.ignore.append(re.compile(rb"RS\+ \$SYS .*"))
        await c.expect_bytes(b"MSG a 1 6\r\nPING\r\n\r\n")  # PING inside a payload is data
        await c.expect_bytes(b"+OK\r\n")
        await c.expect_close()
        assert bytes(w.data) == b"PONG\r\n"  # only the PING at a frame boundary was answered

    _run(main())


def test_conn_mismatch_and_unordered() -> None:
    async def main() -> None:
        c, _ = _conn([b"MSG a 2 1\r\nx\r\nMSG a 1 1\r\nx\r\n-ERR 'x'\r\n"])
        await c.expect_unordered([b"MSG a 1 1\r\nx\r\n", b"MSG a 2 1\r\nx\r\n"])
        with pytest.raises(Mismatch) as exc:
            await c.expect_bytes(b"PONG\r\n")
        assert "first difference at byte 0" in exc.value.render()

    _run(main())


def test_conn_info_and_regex() -> None:
    async def main() -> None:
        c, _ = _conn([b'INFO {"a":1} \r\nMSG foo 7 2\r\nhi\r\n'])
        obj, line = await c.expect_info()
        assert obj == {"a": 1} and line.endswith(b" \r\n")
        m = await c.expect_regex(r"MSG foo (?P<sid>\d+) 2")
        assert m.group("sid") == "7"
        await c.expect_bytes(b"hi\r\n")

    _run(main())


def test_conn_expect_nothing_and_timeout() -> None:
    async def main() -> None:
        c, _ = _conn([], eof=False)
        await c.expect_nothing(0.05)
        with pytest.raises(Mismatch):
            await c.expect_bytes(b"X", timeout=0.05)
        await c.close()

    _run(main())


def test_all_case_files_parse() -> None:
    cases = load_all()
    assert len(cases) >= 200
    assert len({c.name for c in cases}) == len(cases)


def test_conn_add_ignore_refilters_pending() -> None:
    async def main() -> None:
        c, _ = _conn([b"INFO {\"x\":1}\r\nMSG a 1 4\r\nINFO\r\n-ERR 'gone'\r\n"])
        while not c.eof:  # let the reader split everything into pending frames first
            await c.wait_data(time.monotonic() + 0.05)
        c.add_ignore(re.compile(rb"INFO .*"))
        c.add_ignore(re.compile(rb"-ERR 'gone'"))
        await c.expect_bytes(b"MSG a 1 4\r\nINFO\r\n")  # the payload "INFO" is data, not a frame
        await c.expect_close()

    _run(main())


def test_parse_security_steps() -> None:
    st = parse_step("tls", 1)
    assert (st.op, st.arg) == ("tls", {})
    st = parse_step("c2 tls cert=alice fail", 1)
    assert st.conn == "c2" and st.arg == {"cert": "alice", "fail": True}
    assert parse_step("tls hello", 1).arg == {"hello": True}
    with pytest.raises(FormatError):
        parse_step("tls cert", 1)
    tmpl, opts = parse_step('connect nkey=SUAX {"verbose":true}', 1).arg
    assert opts == {"nkey": "SUAX"} and tmpl.render(str) == b'{"verbose":true}'
    tmpl, opts = parse_step("connect", 1).arg
    assert opts == {} and tmpl.render(str) == b'{"verbose":false,"pedantic":false}'
    with pytest.raises(FormatError):
        parse_step("connect user=x {}", 1)
    st = parse_step(r"r1 expect ignored RS\+ \$SYS \$SYS\.REQ\.SERVER\.PING", 1)
    assert st.op == "expect_ignored" and st.arg == r"RS\+ \$SYS \$SYS\.REQ\.SERVER\.PING"


def test_nkey_sign_verify() -> None:
    import base64

    import nkeys

    from conformance import nkeyutil

    seed = "SUAI6K73KGF3AGKT6DBH6H2IYMIARU6NXNXVG6FUDZBTP3ZK3O4YV7ZF6Q"
    assert nkeyutil.public_key(seed) == "UBPDNMP7UJAKY36RDZT4L5425PM6SOC6TMGGEKBMVBFX6DJC2J2JIGPU"
    sig = nkeyutil.sign(seed, b"nonce")
    assert "=" not in sig and "+" not in sig and "/" not in sig
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    kp = nkeys.from_seed(bytearray(seed.encode()))
    assert kp.verify(b"nonce", raw)
    assert base64.b64decode(nkeyutil.sign(seed, b"nonce", std=True)) == raw


def test_certs_and_tls_handshake(tmp_path: Any) -> None:
    """The run's certificates work for a real handshake (client cert verified by our CA), and
    Conn.start_tls upgrades a connection after plaintext bytes were read."""
    import ssl

    from cryptography import x509

    from conformance.certs import Certs

    certs = Certs(tmp_path)
    cert = x509.load_pem_x509_certificate(open(certs.path("alice_cert"), "rb").read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    subj = x509.load_pem_x509_certificate(open(certs.path("subj_cert"), "rb").read())
    assert subj.subject.rfc4514_string() == "CN=subj,OU=nats,O=Example"

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs.path("ca"))
    server_ctx.load_cert_chain(certs.path("server_cert"), certs.path("server_key"))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    async def main() -> None:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b'INFO {"tls_required":true} \r\n')
            await w.drain()
            await w.start_tls(server_ctx)
            peer = w.get_extra_info("peercert")
            seen.append(dict(x[0] for x in peer["subject"])["commonName"])
            w.write(b"PONG\r\n")
            await w.drain()
            w.close()

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        c = await Conn.open("t", "127.0.0.1", port, 2.0)
        await c.expect_info()
        await c.start_tls(certs.client_context("client"))
        await c.expect_bytes(b"PONG\r\n")
        await c.expect_close()
        await c.close()
        srv.close()
        await srv.wait_closed()

    _run(main())
    assert seen == ["client"]


def test_parse_reload_step_and_configs() -> None:
    text = """group: g
=== r
config: |
  max_payload: 1000
config_b: |
  max_payload: 2000
  debug: true
connect
reload config_b
reload
"""
    (case,) = parse_text(text)
    assert case.private and case.spec.own_config
    assert case.configs == {"config_b": "max_payload: 2000\ndebug: true\n"}
    assert [s.arg for s in case.steps if s.op == "reload"] == ["config_b", None]
    with pytest.raises(FormatError, match="no config_c: header"):
        parse_text(text.replace("reload config_b", "reload config_c"))
    with pytest.raises(FormatError, match="reload needs a config: header"):
        parse_text("group: g\n=== r\nreload\n")
    with pytest.raises(FormatError, match="reload takes nothing or a config_NAME header"):
        parse_text("group: g\n=== r\nconfig: x: 1\nreload other\n")

def test_requires_and_jetstream_headers() -> None:
    cases = parse_text(
        "group: g\n=== a\nrequires: foo, bar\n> PING\n=== b\njetstream: yes\n> PING\n"
        "=== c\n> PING\n"
    )
    a, b, c = cases
    assert a.requires == frozenset({"foo", "bar"}) and not a.spec.jetstream
    # jetstream: yes -> -js -sd <own dir>, a private server, and it requires jetstream
    assert b.spec.jetstream and b.private and b.requires == frozenset({"jetstream"})
    assert c.requires == frozenset() and not c.private
    js_cases = [x for x in load_all() if x.name.startswith("jetstream.")]
    assert js_cases and all(
        "jetstream" in x.requires for x in js_cases if x.name != "jetstream.api.disabled"
    )


def test_jetstream_server_command_has_its_own_store(tmp_path: Any) -> None:
    from pathlib import Path

    from conformance.targets import ServerProcess, ServerSpec, Target

    t = Target("x", Path("/bin/true"), available=True)
    argv1 = ServerProcess(t, ServerSpec(jetstream=True), tmp_path).command()
    argv2 = ServerProcess(t, ServerSpec(jetstream=True), tmp_path).command()
    i = argv1.index("-js")
    assert argv1[i + 1] == "-sd" and argv1[i + 2] != argv2[argv2.index("-sd") + 1]


def test_jetstream_normalise_and_compare() -> None:
    from conformance.pycases._js import Entry, compare_recordings, normalise, normalise_frame

    v = normalise(
        {
            "created": "2026-01-02T03:04:05.123Z",
            "first_ts": "0001-01-01T00:00:00Z",
            "metadata": {"_nats.ver": "2.14.0"},
            "r": "$JS.ACK.S.D.1.2.3.1796066093009058910.0",
        }
    )
    assert v == {
        "created": "<time>",
        "first_ts": "0001-01-01T00:00:00Z",
        "metadata": {"_nats.ver": "<version>"},
        "r": "$JS.ACK.S.D.1.2.3.<ts>.0",
    }

    # A shorter time stamp (Go drops trailing zeros) does not change the normalised frame.
    def frame(ts: str) -> bytes:
        h = f"NATS/1.0\r\nNats-Time-Stamp: {ts}\r\n\r\n".encode()
        return b"HMSG i 1 %d %d\r\n%sab\r\n" % (len(h), len(h) + 2, h)

    assert normalise_frame(frame("2026-01-01T00:00:00.1Z")) == normalise_frame(
        frame("2026-01-01T00:00:00.12Z")
    )
    ref = [Entry("a", {"x": 1, "y": "s", "ts": "<time>"}, '{"x":1,"y":"s","ts":"<time>"}')]
    assert compare_recordings(ref, ref, "other") == []
    assert compare_recordings([Entry("a", {"x": 1, "y": "s"})], ref, "go29") == []  # ts: 2.10+
    probs = compare_recordings([Entry("a", {"x": 2, "y": "s"})], ref, "other")
    assert any("missing keys ['ts']" in p for p in probs) and any(
        "values differ" in p for p in probs
    )
    order = [Entry("a", {"y": "s", "x": 1, "ts": "<time>"}, '{"y":"s","x":1,"ts":"<time>"}')]
    assert any("key order" in p for p in compare_recordings(order, ref, "other"))
    text = [Entry("a", {"x": 1, "y": "s", "ts": "<time>"}, '{"x": 1,"y":"s","ts":"<time>"}')]
    assert any("JSON text differs" in p for p in compare_recordings(text, ref, "other"))
    assert (
        compare_recordings(
            [Entry("a", {"x": 2, "y": "s", "ts": "<time>"})], ref, "other", loose=("x",)
        )
        == []
    )
    new = ref + [Entry("b", "frame", None, new=True)]
    assert compare_recordings(ref, new, "go29") == []
    assert compare_recordings(ref, new, "other") != []
