"""The parser fuzz targets (tools/fuzz_parsers.py), bounded for CI: nats-server's fuzz seeds and
TestShouldFail inputs, its test configuration files, and seeded random mutations of them.
Only ProtocolError / ConfError (and the usage error with nats-server's messages) may come
out, no input may take more than 2 s, and the parser keeps no more than its limits allow
between reads. `make fuzz` runs the same targets coverage-guided (atheris) for longer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "tools" / "fuzz_parsers.py"
_spec = importlib.util.spec_from_file_location("fuzz_parsers", _PATH)
assert _spec is not None and _spec.loader is not None
fuzz_parsers = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_parsers"] = fuzz_parsers
_spec.loader.exec_module(fuzz_parsers)


@pytest.mark.parametrize("target,inputs", [("protocol", 40_000), ("config", 6_000)])
def test_fuzz_target(target: str, inputs: int) -> None:
    n = fuzz_parsers.run_random(target, seconds=5.0, seed=20261130, max_inputs=inputs)
    assert n >= min(inputs, 500)


def test_a_failure_is_reported_with_its_input() -> None:
    def boom(data: bytes) -> None:
        raise KeyError("x")

    with pytest.raises(AssertionError, match="KeyError.*on input b'PING"):
        fuzz_parsers._one(boom, b"PING\r\n", 1.0)


def test_a_hang_is_reported() -> None:
    def spin(data: bytes) -> None:
        while True:
            pass

    import signal

    old = signal.signal(signal.SIGALRM, fuzz_parsers._alarm)
    try:
        with pytest.raises(AssertionError, match="hang"):
            fuzz_parsers._one(spin, b"x", 0.2)
    finally:
        signal.signal(signal.SIGALRM, old)


def test_include_path_with_nul_is_a_conf_error() -> None:
    """Found by the config fuzzer: os.path.realpath raised ValueError on the NUL."""
    from pynats_server.conf import ConfError, parse_tokens

    with pytest.raises(ConfError, match="invalid argument"):
        parse_tokens('monitoring_port = 8222\ninclude \x00"x.conf"\n', path="fuzz.conf", env={})
    fuzz_parsers.fuzz_config(b'\nmonitoring_port = 8222\n\ninclude \x00\x00\x00\x00"includeort = 82eck_c.conf"\n')


def test_tls_file_path_with_nul_is_a_config_error() -> None:
    """Found by the config fuzzer: open() raised ValueError on the NUL."""
    fuzz_parsers.fuzz_config(b'tls {\n  cert_file: "./a\x00b.pem"\n  key_file: "./k.pem"\n}\n')


def test_resolver_dir_with_nul_is_a_config_error() -> None:
    """Found by the config fuzzer: os.stat raised ValueError on the NUL."""
    fuzz_parsers.fuzz_config(b'operator: "x"\nresolver: { type: full, dir: "./a\x00b" }\n')


def test_route_url_with_a_bad_bracket_is_a_config_error() -> None:
    """Found by the config fuzzer: urlsplit raised ValueError (Invalid IPv6 URL)."""
    fuzz_parsers.fuzz_config(b"cluster { name: abc, port: 4244, routes = [ nats-route://foo:bar@127.[.0.1:4245 ] }\n")
