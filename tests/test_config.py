"""`-c FILE` and `-t`: nats-server configuration files mapped onto Options.

The expected messages were checked against `nats-server -t` 2.14.0 (which also fails `-t` on
warnings; pynats-server returns them from apply_config_file instead).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pynats_server import cli, const
from pynats_server.config import apply_config_file, go_parse_duration
from pynats_server.options import Options, RouteURL

# protocol.md section 7, with users.conf holding one user: a `users` array is not supported yet.
EXAMPLE = """\
# cluster_example.conf  (run with ROUTE_PASS=rpw in the environment)
SERVER_PORT = 4222
server_name: "node-a"
host: 127.0.0.1
port: $SERVER_PORT          // a variable must be the whole value
http: 127.0.0.1:8222
max_payload: 2MB
max_pending: 64MB
max_control_line: 4KB
max_connections: 10k
ping_interval: "30s"
ping_max: 3
write_deadline: "5s"
lame_duck_duration: "2m"
lame_duck_grace_period: "10s"
trace: off
authorization {
  timeout: 2
  include ./users.conf      // user and password
}
cluster {
  name: "C1"
  listen: "127.0.0.1:6222"
  advertise: "127.0.0.1:6222"
  no_advertise: false
  connect_retries: 5
  pool_size: -1             // 2.10+ only: disable pooling (2.9-like)
  compression: off          // 2.10+ only
  authorization { user: route_user, password: $ROUTE_PASS, timeout: 2 }
  routes = [
    nats-route://route_user:rpw@127.0.0.1:6223
    nats-route://route_user:rpw@127.0.0.1:6224
  ]
}
"""


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROUTE_PASS", "rpw")
    (tmp_path / "users.conf").write_text('user: alice\npassword: "s3cret"\n')
    path = tmp_path / "cluster_example.conf"
    path.write_text(EXAMPLE)
    return path


def conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "x.conf"
    path.write_text(text)
    return str(path)


def apply(tmp_path: Path, text: str) -> tuple[Options, list[str]]:
    opts = Options()
    warnings = apply_config_file(opts, conf(tmp_path, text))
    return opts, warnings


def failure(tmp_path: Path, text: str) -> str:
    with pytest.raises(cli.UsageError) as e:
        apply_config_file(Options(), conf(tmp_path, text))
    return str(e.value).replace(str(tmp_path) + "/", "")


def test_example_config(example: Path) -> None:
    opts = Options()
    assert apply_config_file(opts, str(example)) == []
    assert (opts.host, opts.port, opts.server_name) == ("127.0.0.1", 4222, "node-a")
    assert (opts.http_host, opts.http_port) == ("127.0.0.1", 8222)
    assert (opts.max_payload, opts.max_pending, opts.max_control_line) == (2 << 20, 64 << 20, 4096)
    assert opts.max_connections == 10_000
    assert (opts.ping_interval, opts.ping_max, opts.write_deadline) == (30.0, 3, 5.0)
    assert (opts.lame_duck_duration, opts.lame_duck_grace_period) == (120.0, 10.0)
    assert opts.trace is False
    assert (opts.username, opts.password, opts.authorization, opts.auth_timeout) == (
        "alice", "s3cret", None, 2.0,
    )  # fmt: skip
    c = opts.cluster
    assert (c.name, c.host, c.port, c.advertise, c.no_advertise) == (
        "C1", "127.0.0.1", 6222, "127.0.0.1:6222", False,
    )  # fmt: skip
    assert (c.connect_retries, c.user, c.password, c.auth_timeout) == (5, "route_user", "rpw", 2.0)
    assert c.routes == [
        RouteURL("127.0.0.1", 6223, "route_user", "rpw"),
        RouteURL("127.0.0.1", 6224, "route_user", "rpw"),
    ]


def test_example_with_a_users_array(example: Path) -> None:
    (example.parent / "users.conf").write_text(
        'users = [ {user: alice, password: "s3cret", permissions: {publish: {allow: ["a.>"], deny: "a.b"},'
        ' subscribe: ["x", "y q"]}}, {user: "bob", password: "bobpw"} ]\n'
    )
    opts = Options()
    apply_config_file(opts, str(example))
    assert [(u.user, u.password) for u in opts.users] == [("alice", "s3cret"), ("bob", "bobpw")]
    p = opts.users[0].permissions
    assert p is not None and p.publish_allow == ["a.>"] and p.publish_deny == ["a.b"]
    assert p.subscribe_allow == ["x", "y q"] and opts.users[1].permissions is None


def test_example_needs_route_pass(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTE_PASS")
    with pytest.raises(
        cli.UsageError, match="variable reference for 'ROUTE_PASS' on line 29 can not be found"
    ):
        apply_config_file(Options(), str(example))


def test_flags_override_the_config_file(example: Path) -> None:
    cmd = cli.build(["-c", str(example), "-p", "5555", "--cluster_name", "C2", "-DV"])
    assert cmd.action == "run"
    o = cmd.opts
    assert (o.port, o.host, o.server_name, o.config_file) == (
        5555,
        "127.0.0.1",
        "node-a",
        str(example),
    )
    assert (o.cluster.name, o.cluster.port, o.debug, o.trace) == ("C2", 6222, True, True)


def test_check_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-t", "-c", str(example)]) == 0
    out = capsys.readouterr()
    assert f"configuration file {example} is valid (sha256:" in out.err  # stderr, as nats-server


def test_check_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = conf(tmp_path, "port: 4222\nfoo = 1\n")
    assert cli.main(["-t", "-c", path]) != 0
    out = capsys.readouterr()
    assert out.err.strip() == f'pynats-server: {path}:2:1: unknown field "foo"'
    assert "is valid" not in out.out


def test_check_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = conf(tmp_path, "listen: 127.0.0.1:$PORT\n")
    assert cli.main(["-t", "-c", path]) != 0
    assert capsys.readouterr().err.strip() == (
        "pynats-server: Parse error on line 1: 'Expected a top-level value to end with a new "
        "line, comment or EOF, but got '$' instead.'"
    )


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-t", "-c", str(tmp_path / "nope.conf")]) != 0
    err = capsys.readouterr().err
    assert err.strip() == f"pynats-server: open {tmp_path}/nope.conf: no such file or directory"


# -- values ------------------------------------------------------------------------------------

SETTINGS = [
    ("listen: 4222", {"port": 4222, "host": const.DEFAULT_HOST}),
    ("listen: 127.0.0.1:4223", {"port": 4223, "host": "127.0.0.1"}),
    ('listen: "[::1]:4222"', {"host": "::1", "port": 4222}),
    ("net: 10.0.0.1\nport: -1", {"host": "10.0.0.1", "port": -1}),
    ("client_advertise: a.example:4222", {"client_advertise": "a.example:4222"}),
    ("http: 8222", {"http_host": "", "http_port": 8222}),
    ("monitor_port: 8223", {"http_port": 8223}),
    ("http_port: -1", {"http_port": -1}),
    ("max_connections: 0", {"max_connections": -1}),  # 0: no clients at all, as in nats-server
    ("max_conn: 5\nmax_subs: 7", {"max_connections": 5, "max_subscriptions": 7}),
    ("max_subscriptions: 8", {"max_subscriptions": 8}),
    ("ping_interval: '1m30s'", {"ping_interval": 90.0}),
    ("write_deadline: 500ms", {"write_deadline": 0.5}),
    ("debug: true\ntrace: yes\nlogtime: off", {"debug": True, "trace": True, "logtime": False}),
    ("trace_verbose: on", {"trace": True, "trace_verbose": True}),
    (
        "log_file: /tmp/x.log\npid_file: /tmp/x.pid",
        {"log_file": "/tmp/x.log", "pid_file": "/tmp/x.pid"},
    ),
    ("logfile: a.log\npidfile: a.pid", {"log_file": "a.log", "pid_file": "a.pid"}),
    ("ports_file_dir: /tmp", {"ports_file_dir": "/tmp"}),
    ("no_header_support: true", {"no_header_support": True}),
    (
        "authorization { token: s3cret, timeout: 0.5 }",
        {"authorization": "s3cret", "auth_timeout": 0.5},
    ),
    (
        "authorization { username: u, pass: p }",
        {"username": "u", "password": "p", "auth_timeout": 2.0},
    ),
    (
        "authorization { user: u, timeout: '3s' }",
        {"username": "u", "password": None, "auth_timeout": 3.0},
    ),
    (
        "lame_duck_duration: 30s\nlame_duck_grace_period: 0s",
        {"lame_duck_duration": 30.0, "lame_duck_grace_period": 0.0},
    ),  # fmt: skip
    ("PORT = 4333\nport: $PORT", {"port": 4333}),
    ("Port: 4333\nMAX_PAYLOAD: 1KB", {"port": 4333, "max_payload": 1024}),  # keys: any case
    ("jetstream: false", {}),
    ("jetstream { enabled: false }", {}),
]


@pytest.mark.parametrize("text,expected", SETTINGS)
def test_settings(tmp_path: Path, text: str, expected: dict) -> None:
    opts, warnings = apply(tmp_path, text)
    assert warnings == []
    assert {k: getattr(opts, k) for k in expected} == expected


CLUSTER = [
    ("cluster { listen: 6222 }", {"host": const.DEFAULT_HOST, "port": 6222}),
    ("cluster { port: 6223, host: 127.0.0.1 }", {"host": "127.0.0.1", "port": 6223}),
    ("cluster { net: 127.0.0.2, port: -1 }", {"host": "127.0.0.2", "port": -1}),
    (
        "cluster { cluster_advertise: a:1, no_advertise: true }",
        {"advertise": "a:1", "no_advertise": True},
    ),
    ("cluster { ping_interval: '10s', ping_max: 4 }", {"ping_interval": 10.0, "ping_max": 4}),
    (
        "cluster { routes: [ nats://h1:1, nats-route://u:p@h2 ] }",
        {"routes": [RouteURL("h1", 1, scheme="nats"), RouteURL("h2", 6222, "u", "p")]},
    ),  # fmt: skip
    (
        "cluster { authorization { user: ru, password: rp } }",
        {"user": "ru", "password": "rp", "auth_timeout": 2.0},
    ),  # fmt: skip
]


@pytest.mark.parametrize("text,expected", CLUSTER)
def test_cluster(tmp_path: Path, text: str, expected: dict) -> None:
    opts, warnings = apply(tmp_path, text)
    assert warnings == []
    assert {k: getattr(opts.cluster, k) for k in expected} == expected


WARNINGS = [
    ("", "x.conf: config has no values or is empty"),
    (
        "ping_interval: 30",
        'x.conf:1:0: invalid use of field "ping_interval": ping_interval should be converted to a duration',
    ),  # fmt: skip
    (
        "authorization { token: c, timeout: 61 }",
        'x.conf:1:26: invalid use of field "timeout": timeout of 61 (61.000000 seconds) is high, consider '
        "keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, for example",
    ),  # fmt: skip
    (
        "authorization { token: c, timeout: 100.5 }",
        'x.conf:1:26: invalid use of field "timeout": timeout of 100.5 (100.500000 seconds) is high, consider '
        "keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, for example",
    ),  # fmt: skip
    (
        "cluster { ping_interval: '1m' }",
        "x.conf:1:10: Cluster 'ping_interval' will reset to 30s which is the max for routes",
    ),  # fmt: skip
    (
        "cluster { routes = [ nats-route://a:b@h:1, nats-route://a:b@h:1 ] }",
        'x.conf:1:43: invalid use of field "nats-route://a:b@h:1": Duplicate route entry detected',
    ),  # fmt: skip
    # Known to nats-server but not implemented here:
    (
        "leafnodes { port: 7422, compression: s2_auto }",
        "x.conf:1:24: leafnodes compression is not supported by pynats-server and is ignored "
        "(leaf node connections are not compressed)",
    ),
    (
        "gateway { name: A }",
        'x.conf:1:0: "gateway" is not supported by pynats-server and is ignored',
    ),
    ("mqtt { port: 1883 }", 'x.conf:1:0: "mqtt" is not supported by pynats-server and is ignored'),
    (
        "accounts { A: { limits: { max_conn: 1 } } }",
        'x.conf:1:16: "accounts.A.limits" is not supported by pynats-server and is ignored',
    ),
    (
        "cluster { pool_size: 3 }",
        "x.conf:1:10: cluster pool_size is not supported by pynats-server and is ignored "
        "(routes are not pooled, as with pool_size: -1)",
    ),  # fmt: skip
    (
        "cluster { compression: s2_auto }",
        "x.conf:1:10: cluster compression is not supported by pynats-server and is ignored "
        "(routes are not compressed)",
    ),  # fmt: skip
    (
        "cluster { connect_backoff: true }",
        'x.conf:1:10: "cluster.connect_backoff" is not supported by pynats-server and is ignored',
    ),  # fmt: skip
]


@pytest.mark.parametrize("text,warning", WARNINGS)
def test_warnings(tmp_path: Path, text: str, warning: str) -> None:
    opts, warnings = apply(tmp_path, text)
    assert [w.replace(str(tmp_path) + "/", "") for w in warnings] == [warning]


def test_deprecated_seconds_still_apply(tmp_path: Path) -> None:
    opts, _ = apply(tmp_path, "ping_interval: 30\nwrite_deadline: 3")
    assert (opts.ping_interval, opts.write_deadline) == (30.0, 3.0)


ERRORS = [
    ("foo = 1", 'x.conf:1:0: unknown field "foo"'),
    ("A = 1\nB = 2\nport = $B", 'x.conf:1:0: unknown field "A"'),  # B is used: no error
    ("  foo = 1\n  bar = 2", 'x.conf:1:2: unknown field "foo"\nx.conf:2:3: unknown field "bar"'),
    ('port: "4222"', "x.conf:1:0: interface conversion: interface {} is string, not int64"),
    ("port: [1 ]", "x.conf:1:0: interface conversion: interface {} is []interface {}, not int64"),
    ('debug: "yes"', "x.conf:1:0: interface conversion: interface {} is string, not bool"),
    ('listen: "localhost"', 'x.conf:1:0: could not parse address string "localhost"'),
    ('listen: "a:b:c"', 'x.conf:1:0: could not parse address string "a:b:c"'),
    ('listen: "localhost:abc"', 'x.conf:1:0: could not parse port "abc"'),
    ("listen: 1.5", "x.conf:1:0: expected port or host:port, got float64"),
    ("http: true", "x.conf:1:0: expected port or host:port, got bool"),
    ('server_name: "a b"', "x.conf:1:0: server name cannot contain spaces"),
    ("max_payload: 3GB", "x.conf:1:0: max_payload value is too big"),
    ("max_control_line: 3GB", "x.conf:1:0: max_control_line value is too big"),
    (
        'ping_interval: "2x"',
        'x.conf:1:0: error parsing ping_interval: time: unknown unit "x" in duration "2x"',
    ),
    (
        'ping_interval: "2"',
        'x.conf:1:0: error parsing ping_interval: time: missing unit in duration "2"',
    ),
    ("ping_interval: 1.5", "x.conf:1:0: interface conversion: interface {} is float64, not int64"),
    (
        'lame_duck_duration: "10s"',
        "x.conf:1:0: invalid lame_duck_duration of 10s, minimum is 30 seconds",
    ),
    (
        "lame_duck_duration: 60",
        "x.conf:1:0: interface conversion: interface {} is int64, not string",
    ),
    (
        'lame_duck_duration: "abc"',
        'x.conf:1:0: error parsing lame_duck_duration: time: invalid duration "abc"',
    ),
    (
        'lame_duck_grace_period: "-1s"',
        "x.conf:1:0: invalid lame_duck_grace_period, needs to be positive",
    ),
    (
        "authorization { user: a, password: b, token: c }",
        "x.conf:1:0: Cannot have a user/pass and token",
    ),
    (
        'authorization { token: c, timeout: "2x" }',
        'x.conf:1:26: error parsing authorization config, \'timeout\' time: unknown unit "x" in duration "2x"',
    ),  # fmt: skip
    (
        "authorization { token: c, timeout: true }",
        "x.conf:1:26: error parsing authorization config, 'timeout' wrong type",
    ),  # fmt: skip
    ("authorization { token: c, foo: 1 }", 'x.conf:1:26: unknown field "foo"'),
    (
        "authorization = 1",
        "x.conf:1:0: interface conversion: interface {} is int64, not map[string]interface {}",
    ),  # fmt: skip
    ("cluster = 1", "x.conf:1:0: Expected map to define cluster, got int64"),
    ('cluster { name: "a b" }', "x.conf:1:10: cluster name cannot contain spaces"),
    ("cluster { foo: 1 }", 'x.conf:1:10: unknown field "foo"'),
    (
        "cluster { authorization { users = [] } }",
        "x.conf:1:10: Cluster authorization does not allow multiple users",
    ),  # fmt: skip
    (
        "cluster { authorization { token = x } }",
        "x.conf:1:10: Cluster authorization does not support tokens",
    ),
    (
        'cluster { routes = "x" }',
        "x.conf:1:10: interface conversion: interface {} is string, not []interface {}",
    ),
    (
        "cluster { routes = [ 1, 2 ] }",
        "x.conf:1:21: interface conversion: interface {} is int64, not string",
    ),
    (
        "cluster { routes = [ foo ] }",
        "x.conf:1:21: error parsing route url [foo]: missing scheme or host",
    ),
    (
        "jetstream: maybe",
        "x.conf:1:0: Expected 'enabled' or 'disabled' for string value, got 'maybe'",
    ),
    # Not supported by pynats-server:
    ("jetstream: maybe", "x.conf:1:0: Expected 'enabled' or 'disabled' for string value, got 'maybe'"),
    ("jetstream { max_mem: 1X }", "x.conf:1:12: max_mem_store sizes defined as strings must end in K, M, G, T"),
    ("store_dir: /b\njetstream { store_dir: /a }", "x.conf:2:13: Duplicate 'store_dir' configuration"),
    ("jetstream { key: s3cret }", "x.conf:1:12: JetStream encryption is not supported"),
    # TLS, with nats-server's texts (tests/test_tls_config.py has more).
    ("tls { cert_file: a.pem }", "x.conf:1:0: missing 'key_file' in TLS configuration"),
    ("cluster { tls { cert_file: a.pem } }", "x.conf:1:10: missing 'key_file' in TLS configuration"),
    (
        "operator: /nonexistent/op.jwt",
        "x.conf:1:0: error parsing operator JWT: open /nonexistent/op.jwt: no such file or directory",
    ),  # fmt: skip
    ("accounts { $G: { } }", 'x.conf:1:11: "$G" is a Reserved Account'),
    (
        "accounts { A: { imports: [ {stream: {account: B, subject: foo}} ] } }",
        'x.conf:1:0: "B" account not defined for stream import',
    ),
    (
        "accounts { A: { }, B: { imports: [ {stream: {account: A, subject: foo}} ] } }",
        'x.conf:1:0: Error adding stream import "foo": stream import not authorized',
    ),
    ("proxy_protocol: true", "x.conf:1:0: the PROXY protocol is not supported"),
    # Warnings come first, then errors, as in nats-server.
    (
        "ping_interval: 30\nfoo: 1",
        'x.conf:1:0: invalid use of field "ping_interval": ping_interval should be converted to a duration\n'
        'x.conf:2:1: unknown field "foo"',
    ),  # fmt: skip
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_errors(tmp_path: Path, text: str, message: str) -> None:
    assert failure(tmp_path, text) == message


def test_included_positions_name_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("port: 1\nbogus: 2\n")
    assert failure(tmp_path, "include inc.conf") == 'inc.conf:2:1: unknown field "bogus"'


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("0", 0.0),
        ("1h2m3.5s", 3723.5),
        ("-1.5s", -1.5),
        ("+2m", 120.0),
        ("100ms", 0.1),
        ("1us", 1e-6),
        ("3µs", 3e-6),
        ("10ns", 1e-8),
        (".5s", 0.5),
        ("5.s", 5.0),
    ],  # fmt: skip
)
def test_go_parse_duration(text: str, seconds: float) -> None:
    assert go_parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text,message",
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1.5.5s", 'time: missing unit in duration "1.5.5s"'),
        ("3d", 'time: unknown unit "d" in duration "3d"'),
        ("-", 'time: invalid duration "-"'),
        ("1s2", 'time: missing unit in duration "1s2"'),
    ],  # fmt: skip
)
def test_go_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        go_parse_duration(text)
    assert str(e.value) == message
