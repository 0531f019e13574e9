"""Coverage-guided fuzzing of the protocol parser and the configuration parser.

    python tools/fuzz_parsers.py --seconds 300              # both targets, half the time each
    python tools/fuzz_parsers.py --target protocol --seconds 60
    python tools/fuzz_parsers.py --engine random --seconds 60  # without atheris

With atheris installed (`pip install atheris`; `make fuzz` does) each target runs under
libFuzzer, seeded with nats-server's own fuzz corpus (FuzzParser), the inputs of its
TestShouldFail and its test configuration files, with a per-input timeout (a hang fails).
Without it, seeded random mutations of the same corpus run instead (the CI form,
tests/test_fuzz_parsers.py, runs a bounded number of those).

What must hold for every input: the protocol parser raises nothing but ProtocolError and
keeps no more than its limits allow between reads; the configuration parser and the
mapping onto the options raise nothing but ConfError (and the usage error that carries
nats-server's messages).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pynats_server.cli import UsageError  # noqa: E402
from pynats_server.conf import ConfError, parse_tokens  # noqa: E402
from pynats_server.config import apply_config  # noqa: E402
from pynats_server.options import Options  # noqa: E402
from pynats_server.protocol.parser import CLIENT, ROUTER, Hold, Parser, ProtocolError  # noqa: E402

MAX_CONTROL_LINE = 256
MAX_PAYLOAD = 4096

# nats-server's FuzzParser seeds and TestShouldFail inputs (server/parser_fuzz_test.go,
# server/parser_test.go), as data.
PROTOCOL_SEEDS: list[bytes] = [
    b"PING\r\n", b"PONG\r\n", b"PUB foo 33333\r\n", b"HPUB foo INBOX.22 0 5\r\nHELLO\r",
    b"HMSG $foo foo 10 8\r\nXXXhello\r", b"MSG $foo foo 5\r\nhello\r", b"SUB foo 1\r\nSUB foo 2\r\n",
    b"UNSUB 1 5\r\n", b"RMSG $G foo.bar | baz 11\r\nhello world\r",
    b'CONNECT {"verbose":false,"pedantic":true,"tls_required":false}\r\n',
    b"xxx", b"Px", b"PIx", b"PINx", b" PING", b"POx", b"PONx", b"+x", b"+Ox", b"-x", b"-Ex", b"-ERx",
    b"-ERRx", b"Cx", b"COx", b"CONx", b"CONNx", b"CONNEx", b"CONNECx", b"CONNECT \r\n", b"PUx",
    b"PUB foo\r\n", b"PUB  \r\n", b"PUB foo bar       \r\n", b"PUB foo 2\r\nok \r\n", b"PUB foo 2\r\nok\r \n",
    b"Sx", b"SUx", b"SUB\r\n", b"SUB  \r\n", b"SUB foo\r\n", b"SUB foo bar baz 22\r\n", b"Ux", b"UNx",
    b"UNSx", b"UNSUx", b"UNSUBx", b"UNSUBUNSUB 1\r\n", b"UNSUB_2\r\n", b"UNSUB_UNSUB_UNSUB 2\r\n",
    b"UNSUB_\t2\r\n", b"UNSUB\r\n", b"UNSUB \r\n", b"UNSUB          \t       \r\n", b"Ix", b"INx",
    b"INFx", b"INFO  \r\n", b"Mx", b"MSx", b"MSGx", b"MSG  \r\n",
    b"RS+ $G foo q 1\r\nRS- $G foo\r\nRMSG $G foo + r q 5\r\nhello\r\n", b"LS+ $G foo\r\n",
    b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", b"PUB foo 4097\r\n",
]  # fmt: skip


def config_seeds() -> list[bytes]:
    """nats-server's test configuration files, where the reference checkout is; and a few
    of our own (so the seeds exist everywhere)."""
    out = [
        b"port: 4222\nmax_payload: 1MB\n", b"authorization { user: a, password: b, timeout: 2 }\n",
        b'cluster { name: "C", listen: "127.0.0.1:6222", routes = [nats://127.0.0.1:6223] }\n',
        b"accounts { A { users = [{user: u, password: p}], exports = [{stream: foo.>}] } }\n",
        b"include ./x.conf\n", b"$VAR = 5\nport: $VAR\n", b"a { b { c: [1, 2, {d: e}] } }\n",
        b'jetstream { store_dir: "/tmp/js", max_mem: 1G }\n', b"ping_interval: \"2m\"\nwrite_deadline: 10s\n",
    ]  # fmt: skip
    ref = Path(os.environ.get("NATS_SERVER_SRC", "/work/ref/server")) / "configs"
    if ref.is_dir():
        for p in sorted(ref.rglob("*.conf")):
            try:
                out.append(p.read_bytes()[:20000])
            except OSError:
                pass
    return out


class _Sink:
    """Accepts every handler call the parser makes."""

    def __getattr__(self, name: str) -> Any:
        return _noop


def _noop(*args: Any, **kw: Any) -> None:
    return None


def _retained(p: Parser) -> int:
    n = len(p._pending) + sum(len(c) for c in p._chunks) + len(p._held)
    return n


def fuzz_protocol(data: bytes) -> None:
    """One input: a client or route parser (first byte), fed in two reads (second byte)."""
    if len(data) < 2:
        return
    kind = CLIENT if data[0] & 1 else ROUTER
    p = Parser(_Sink(), kind, MAX_CONTROL_LINE, MAX_PAYLOAD)
    p.pedantic = bool(data[0] & 2)
    p.headers = bool(data[0] & 4) or kind == ROUTER
    body = data[2:]
    cut = data[1] * len(body) // 256
    try:
        for piece in (body[:cut], body[cut:]):
            p.feed(piece)
            # Between reads the parser keeps a partial control line (bounded by
            # max_control_line) or a partial payload (bounded by the declared size, itself
            # bounded by max_payload on clients; routes have no limit, like nats-server's).
            limit = MAX_CONTROL_LINE + MAX_PAYLOAD + 2 if kind == CLIENT else len(data) + MAX_CONTROL_LINE
            assert _retained(p) <= limit, f"parser keeps {_retained(p)} bytes"
    except (ProtocolError, Hold):
        pass


def fuzz_config(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        tokens = parse_tokens(text, path="fuzz.conf", env={})
        apply_config(Options(), tokens, "fuzz.conf")
    except (ConfError, UsageError):
        pass


TARGETS = {"protocol": (fuzz_protocol, PROTOCOL_SEEDS), "config": (fuzz_config, None)}


def _seeds(target: str) -> list[bytes]:
    if target == "protocol":
        return [bytes([k, 128]) + s for s in PROTOCOL_SEEDS for k in (1, 3, 5, 0)]
    return config_seeds()


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """A libFuzzer-like mutation: flip, insert, delete, duplicate, splice."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes(rng.choice(b" \t\r\n{}[]:=,\"'$#0123456789abcPUBSUBMSG+-.*>") for _ in range(rng.randint(1, 4)))
        elif op == 2 and b:
            del b[i : i + rng.randint(1, 8)]
        elif op == 3 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 32)]
        elif op == 4:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            b[i:] = other[j:]
        else:
            b[i:i] = str(rng.choice([0, -1, 4096, 4097, 2**31, 2**64, 10**30])).encode()
    return bytes(b[:65536])


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def run_random(target: str, seconds: float, seed: int, max_inputs: int = 10**9, per_input: float = 2.0) -> int:
    """Seeded random mutations of the corpus; returns how many inputs ran. Raises on a
    failure, with the input in the message."""
    fn = TARGETS[target][0]
    rng = random.Random(seed)
    pool = _seeds(target)
    end = time.monotonic() + seconds
    n = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for data in pool:
            _one(fn, data, per_input)
            n += 1
        while time.monotonic() < end and n < max_inputs:
            data = mutate(rng, rng.choice(pool), pool)
            _one(fn, data, per_input)
            n += 1
            if rng.random() < 0.01 and len(pool) < 5000:
                pool.append(data)  # keep a few mutants as new seeds
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return n


def _one(fn: Any, data: bytes, per_input: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, per_input)
    try:
        fn(data)
    except Hang:
        raise AssertionError(f"hang (> {per_input} s) on input {data!r}") from None
    except Exception as e:
        raise AssertionError(f"{type(e).__name__}: {e} on input {data!r}") from e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_atheris(target: str, seconds: float, workdir: Path) -> int:
    """libFuzzer through atheris, in a child process (atheris.Fuzz() does not return)."""
    corpus = workdir / f"corpus-{target}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(_seeds(target)):
        (corpus / f"seed-{i}").write_bytes(s)
    cmd = [sys.executable, __file__, "--atheris-child", target, f"-max_total_time={int(seconds)}", "-timeout=5",
           "-rss_limit_mb=2048", f"-artifact_prefix={workdir}/{target}-", str(corpus)]
    return subprocess.call(cmd)


def _atheris_child(target: str, args: list[str]) -> None:
    import atheris  # type: ignore[import-not-found]

    fn = TARGETS[target][0]
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *args], fn)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--atheris-child"]:
        _atheris_child(argv[1], argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["protocol", "config", "all"], default="all")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default="fuzz-artifacts")
    a = ap.parse_args(argv)
    targets = ["protocol", "config"] if a.target == "all" else [a.target]
    engine = a.engine
    if engine == "auto":
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    rc = 0
    for t in targets:
        secs = a.seconds / len(targets)
        if engine == "atheris":
            print(f"{t}: atheris for {secs:.0f} s", flush=True)
            rc |= run_atheris(t, secs, Path(a.workdir))
        else:
            n = run_random(t, secs, a.seed)
            print(f"{t}: {n} inputs, no failure", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
