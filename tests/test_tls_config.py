"""TLS in configuration files and on the command line, with nats-server 2.14's error texts
(each measured against the 2.14.0 binary; 2.9.10 gives the same except where noted)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from tls_util import Certs, make_certs

from pynats_server import cli
from pynats_server.config import apply_config_file
from pynats_server.options import Options


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(autouse=True)
def _in_certs_dir(tls_certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Config files name the certificates relatively, as the error texts show them.
    monkeypatch.chdir(tls_certs.dir)


def conf(certs: Certs, text: str) -> Options:
    path = certs.dir / "x.conf"
    path.write_text(text + "\n")
    opts = Options()
    apply_config_file(opts, "x.conf")
    return opts


def conf_error(certs: Certs, text: str) -> str:
    with pytest.raises(cli.UsageError) as e:
        conf(certs, text)
    return str(e.value)


PAIR = 'cert_file: "server-cert.pem", key_file: "server-key.pem"'


@pytest.mark.parametrize(
    "text, error",
    [
        ('tls { cert_file: "server-cert.pem" }', "x.conf:1:0: missing 'key_file' in TLS configuration"),
        ('tls { key_file: "server-key.pem" }', "x.conf:1:0: missing 'cert_file' in TLS configuration"),
        ('tls { cert_file: "nope.pem", key_file: "server-key.pem" }',
         "x.conf:1:0: error parsing X509 certificate/key pair: open nope.pem: no such file or directory"),
        ('tls { cert_file: "junk.pem", key_file: "server-key.pem" }',
         "x.conf:1:0: error parsing X509 certificate/key pair: tls: failed to find any PEM data in certificate input"),
        ('tls { cert_file: "server-cert.pem", key_file: "alice-key.pem" }',
         "x.conf:1:0: error parsing X509 certificate/key pair: tls: private key does not match public key"),
        (f"tls {{ {PAIR}, foo: 1 }}", 'x.conf:1:64: error parsing tls config, unknown field "foo"'),  # 2.9: ["foo"]
        (f'tls {{ {PAIR}, timeout: "abc" }}', "x.conf:1:64: error parsing tls config, 'timeout' time: invalid duration \"abc\""),
        (f"tls {{ {PAIR}, timeout: true }}", "x.conf:1:64: error parsing tls config, 'timeout' wrong type"),
        (f'tls {{ {PAIR}, verify: "yes" }}', "x.conf:1:64: error parsing tls config, expected 'verify' to be a boolean"),
        (f'tls {{ {PAIR}, cipher_suites: ["TLS_RSA_WITH_AES_128_CBC_SHA"] }}',
         "x.conf:1:0: insecure cipher suites configured without 'allow_insecure_cipher_suites' option set: "
         "TLS_RSA_WITH_AES_128_CBC_SHA"),  # 2.9 (Go 1.19) accepts it
        (f'tls {{ {PAIR}, handshake_first: "bogus" }}', "x.conf:1:64: field \"handshake_first\"'s value \"bogus\" is invalid"),
        (f"tls {{ {PAIR}, handshake_first: 5 }}",
         'x.conf:1:64: field "handshake_first" should be a boolean or a string, got int64'),
        (f"tls {{ {PAIR}, verify_cert_and_check_known_urls: true }}",
         "x.conf:1:64: verify_cert_and_check_known_urls not supported in this context"),
        (f'tls {{ {PAIR}, min_version: "1.1" }}', "x.conf:1:64: error parsing tls config: unsupported TLS version: TLS 1.1"),
        (f'tls {{ {PAIR}, ca_file: "junk.pem" }}', "x.conf:1:0: failed to parse root ca certificate"),
        ("tls: true", "x.conf:1:0: interface conversion: interface {} is bool, not map[string]interface {}"),
        ('allow_non_tls: "yes"', "x.conf:1:0: interface conversion: interface {} is string, not bool"),
    ],
)
def test_tls_config_errors(tls_certs: Certs, text: str, error: str) -> None:
    (tls_certs.dir / "junk.pem").write_text("garbage\n")
    assert conf_error(tls_certs, text) == error


@pytest.mark.parametrize(
    "text, error",
    [
        # nats-server puts quoted array items one column further (conf.py's positions differ by one).
        (f'tls {{ {PAIR}, cipher_suites: ["TLS_FOO"] }}', "unrecognized cipher TLS_FOO"),
        (f'tls {{ {PAIR}, curve_preferences: ["P999"] }}', "unrecognized curve preference P999"),
        (f'tls {{ {PAIR}, pinned_certs: ["abc"] }}',
         "error parsing tls config, 'pinned_certs' key abc does not look like hex-encoded sha256 of DER encoded "
         "SubjectPublicKeyInfo"),
    ],
)
def test_tls_config_item_errors(tls_certs: Certs, text: str, error: str) -> None:
    msg = conf_error(tls_certs, text)
    assert re.fullmatch(r"x\.conf:1:\d+: " + re.escape(error), msg), msg


def test_tls_config_values(tls_certs: Certs) -> None:
    o = conf(tls_certs, f'tls {{ {PAIR}, ca_file: "ca.pem", verify_and_map: true, timeout: "1.5s", '
                        'handshake_first: "300ms", '
                        'cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"], '
                        'curve_preferences: ["CurveP256"], connection_rate_limit: 5, insecure: true }\n'
                        "allow_non_tls: true\nhttps: 127.0.0.1:8443")
    t = o.tls
    assert t is not None
    assert (t.verify, t.map, t.timeout, t.handshake_first, t.handshake_first_fallback) == (True, True, 1.5, True, 0.3)
    assert t.ciphers == ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
    assert (o.allow_non_tls, o.http_host, o.https_port) == (True, "127.0.0.1", 8443)
    assert o.client_auth_timeout() == 2.5  # the TLS timeout + 1 s
    o = conf(tls_certs, f"tls {{ {PAIR}, handshake_first: auto, timeout: 3 }}\nauthorization {{ timeout: 2 }}")
    assert o.tls is not None and o.tls.handshake_first_fallback == 0.05
    assert o.client_auth_timeout() == 2.0  # given explicitly
    o = conf(tls_certs, f'cluster {{ listen: "127.0.0.1:-1", tls {{ {PAIR}, ca_file: "ca.pem", insecure: true }} }}')
    assert o.cluster.tls is not None and o.cluster.tls.insecure


# -- the command line ----------------------------------------------------------------------


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pynats_server", *args], capture_output=True, text=True,
                          timeout=20, cwd=cwd)


@pytest.mark.parametrize(
    "args, error",
    [
        (["--tls"], "TLS Server certificate must be present and valid"),
        (["--tls", "--tlscert", "server-cert.pem"], "TLS Server private key must be present and valid"),
        (["--tls", "--tlscert", "nope.pem", "--tlskey", "server-key.pem"],
         "error parsing X509 certificate/key pair: open nope.pem: no such file or directory"),
        (["--tls", "--tlscert", "junk.pem", "--tlskey", "server-key.pem"],
         "error parsing X509 certificate/key pair: tls: failed to find any PEM data in certificate input"),
        (["--tlsverify", "--tlscert", "server-cert.pem", "--tlskey", "server-key.pem", "--tlscacert", "nope.pem"],
         "open nope.pem: no such file or directory"),
    ],
)
def test_tls_flag_errors(tls_certs: Certs, args: list[str], error: str) -> None:
    (tls_certs.dir / "junk.pem").write_text("garbage\n")
    r = run("-a", "127.0.0.1", "-p", "-1", *args, cwd=tls_certs.dir)
    assert r.returncode == 1
    assert r.stderr == f"pynats-server: {error}\n"


@pytest.mark.parametrize(
    "args, error",
    [
        (["-ms", "-1"], "Can't start monitoring: TLS cert and key required for HTTPS"),
        (["-ms", "-1", "-m", "-1", "--tls", "--tlscert", "server-cert.pem", "--tlskey", "server-key.pem"],
         "Can't start monitoring: can't specify both HTTP (-1) and HTTPs (-1) ports"),
    ],
)
def test_https_monitoring_errors_are_fatal(tls_certs: Certs, args: list[str], error: str) -> None:
    r = run("-a", "127.0.0.1", "-p", "-1", *args, cwd=tls_certs.dir)
    assert r.returncode == 1
    assert f"[FTL] {error}" in r.stderr and "Traceback" not in r.stderr


async def test_cli_tls_server_serves_nats_py(tls_certs: Certs) -> None:
    """`pynats-server --tlsverify ...` (uvloop when installed) with a verified client."""
    cert, key = tls_certs.pair("server")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pynats_server", "-a", "127.0.0.1", "-p", "-1", "--tlsverify", "--tlscert", cert,
        "--tlskey", key, "--tlscacert", tls_certs.ca_file, "-D", stderr=subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        port = 0
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            assert line, "".join(lines)
            lines.append(line)
            m = re.search(r"Listening for client connections on \S+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if "Server is ready" in line:
                break
        assert any("TLS required for client connections" in x for x in lines)
        nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=tls_certs.client_ctx("alice"), allow_reconnect=False)
        sub = await nc.subscribe("cli")
        await nc.publish("cli", b"over tls")
        assert (await sub.next_msg(timeout=2)).data == b"over tls"
        await nc.close()
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            lines.append(line)
            if "cipher suite" in line:
                assert re.search(r"TLS version 1\.[23], cipher suite TLS_\w+$", line.strip()), line
                break
    finally:
        proc.terminate()
        await proc.wait()
