"""Configuration files: users (passwords, bcrypt hashes, nkeys), permissions,
allow_responses, default_permissions, no_auth_user. The messages were checked against
`nats-server -t` 2.14.0 (no_auth_user's against a 2.14.0 start, which is when it checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynats_server import cli, nkeys_util
from pynats_server.config import apply_config_file
from pynats_server.options import Options, Permissions, ResponsePermission, User

_, UPUB = nkeys_util.create_user()
_, APUB = nkeys_util.create_account()


def conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "x.conf"
    path.write_text(text.replace("$U", UPUB).replace("$A", APUB))
    return str(path)


def apply(tmp_path: Path, text: str) -> Options:
    opts = Options()
    apply_config_file(opts, conf(tmp_path, text))
    return opts


def failure(tmp_path: Path, text: str) -> str:
    with pytest.raises(cli.UsageError) as e:
        apply_config_file(Options(), conf(tmp_path, text))
    return str(e.value).replace(str(tmp_path) + "/", "")


def test_users_nkeys_bcrypt_and_connection_types(tmp_path: Path) -> None:
    opts = apply(tmp_path, """
        authorization {
          users: [
            {user: alice, password: "$2a$11$abcdefghijklmnopqrstuu5Z1R0v5TbP2Dw4D5E3lJ6Sx2bZ.aXO"}
            {nkey: $U, permissions: { subscribe: "x" }}
            {user: bob, password: pw, allowed_connection_types: ["standard", "WebSocket"]}
          ]
        }
    """)
    alice, nk, bob = opts.users
    assert alice.user == "alice" and alice.password.startswith("$2a$11$")
    assert nk.nkey == UPUB and nk.user == "" and nk.permissions == Permissions(subscribe_allow=["x"])
    assert bob.allowed_connection_types == {"STANDARD", "WEBSOCKET"}


def test_bcrypt_single_user_and_token(tmp_path: Path) -> None:
    opts = apply(tmp_path, 'authorization { user: a, password: "$2a$11$abc" }')
    assert (opts.username, opts.password) == ("a", "$2a$11$abc")
    opts = apply(tmp_path, 'authorization { token: "$2a$11$abc" }')
    assert opts.authorization == "$2a$11$abc"


def test_default_permissions_for_users_and_nkeys_without_their_own(tmp_path: Path) -> None:
    opts = apply(tmp_path, """
        authorization {
          users: [ {user: a, pass: b}, {nkey: $U}, {user: c, pass: d, permissions: { publish: "own" }} ]
          default_permissions: { publish: "dp.>" }
        }
    """)
    a, nk, c = opts.users
    assert a.permissions == nk.permissions == Permissions(publish_allow=["dp.>"])
    assert c.permissions == Permissions(publish_allow=["own"])


def test_single_user_permissions_are_ignored(tmp_path: Path) -> None:
    """nats-server applies authorization-level permissions to users-list entries only."""
    opts = apply(tmp_path, 'authorization { user: a, password: b, permissions: { publish: "foo" } }')
    assert (opts.username, opts.password, opts.users) == ("a", "b", [])


@pytest.mark.parametrize(
    "text, response, publish_allow",
    [
        ("allow_responses: true", ResponsePermission(1, 120.0), []),
        ("allow_responses: false", None, None),
        ('allow_responses: {max: 5, expires: "1m"}', ResponsePermission(5, 60.0), []),
        ("allow_responses: {max: 0}", ResponsePermission(1, 120.0), []),
        ('allow_responses: {max: -1, ttl: "-1s"}', ResponsePermission(-1, -1.0), []),
        ('publish_allow_responses: true, publish: "p"', ResponsePermission(1, 120.0), ["p"]),
    ],
)
def test_allow_responses(tmp_path: Path, text: str, response, publish_allow) -> None:
    opts = apply(tmp_path, f"authorization {{ users: [ {{user: a, pass: x, permissions: {{ {text} }}}} ] }}")
    p = opts.users[0].permissions
    assert p is not None and p.response == response and p.publish_allow == publish_allow


def test_queue_permission_entries(tmp_path: Path) -> None:
    opts = apply(tmp_path, 'authorization { users: [ {user: a, pass: x, permissions: { subscribe: ["foo q1", "bar"] }} ] }')
    assert opts.users[0].permissions == Permissions(subscribe_allow=["foo q1", "bar"])


def test_no_auth_user(tmp_path: Path) -> None:
    opts = apply(tmp_path, "no_auth_user: bob\nauthorization { users: [ {user: bob, pass: x} ] }")
    assert opts.no_auth_user == "bob"
    cli.validate(opts)


@pytest.mark.parametrize(
    "text, message",
    [
        ("no_auth_user: zed\nauthorization { users: [ {user: a, pass: x} ] }",
         'no_auth_user: "zed" not present as user or nkey in authorization block or account configuration'),
        ("no_auth_user: zed", 'no_auth_user: "zed" present, but users/nkeys are not defined'),
        ("no_auth_user: a\nauthorization { user: a, pass: x }", 'no_auth_user: "a" present, but users/nkeys are not defined'),
        ("no_auth_user: a\nauthorization { users: [] }", 'no_auth_user: "a" present, but users/nkeys are not defined'),
    ],
)
def test_no_auth_user_must_exist(tmp_path: Path, text: str, message: str) -> None:
    opts = apply(tmp_path, text)
    with pytest.raises(cli.UsageError) as e:
        cli.validate(opts)
    assert str(e.value) == message


async def test_server_refuses_a_missing_no_auth_user() -> None:
    from pynats_server import Server

    with pytest.raises(ValueError, match="not present as user or nkey"):
        await Server(users=[User("a", "b")], no_auth_user="zed").start()


ERRORS = [
    ('authorization { users: [ {nkey: "UABC"} ] }', "x.conf:1:26: Not a valid public nkey for a user"),
    ('authorization { users: [ {nkey: "$A"} ] }', "x.conf:1:26: Not a valid public nkey for a user"),
    ('authorization { users: [ {nkey: "$U", pass: x} ] }', "x.conf:1:92: Nkey users do not take usernames or passwords"),
    ('authorization { users: [ {user: a, nkey: "$U"} ] }', "x.conf:1:35: Nkey users do not take usernames or passwords"),
    ("authorization { users: [ {pass: x} ] }", "x.conf:1:26: User entry requires a user"),
    ("authorization { users: [ {user: a, pass: x}, {user: a, pass: y} ] }", 'x.conf:1:0: Duplicate user "a" detected'),
    ('authorization { users: [ {nkey: "$U"}, {nkey: "$U"} ] }', 'x.conf:1:0: Duplicate nkey "$U" detected'),
    ("authorization { users: {user: a} }", "x.conf:1:16: Expected users field to be an array, got map[user:a]"),
    ("authorization { token: t, users: [ {user: a, pass: x} ] }", "x.conf:1:0: Can not have a token and a users array"),
    ("authorization { user: t, users: [ {user: a, pass: x} ] }", "x.conf:1:0: Can not have a single user/pass and a users array"),
    ('authorization { users: [ {user: a, pass: x, permissions: { allow_responses: "yes" }} ] }',
     "x.conf:1:59: error parsing response permissions, expected a boolean or a map"),
    ("authorization { users: [ {user: a, pass: x, permissions: { allow_responses: {expires: 5} }} ] }",
     "x.conf:1:77: error parsing expires, not a duration string"),
    ('authorization { users: [ {user: a, pass: x, permissions: { allow_responses: {expires: "5x"} }} ] }',
     'x.conf:1:77: error parsing expires: time: unknown unit "x" in duration "5x"'),
    ("authorization { users: [ {user: a, pass: x, permissions: { allow_responses: {foo: 1} }} ] }",
     'x.conf:1:77: Unknown field "foo" parsing permissions'),
    ('authorization { users: [ {user: a, pass: x, permissions: { allow_responses: {max: "x"} }} ] }',
     "x.conf:1:77: interface conversion: interface {} is string, not int64"),
    ('authorization { users: [ {user: a, pass: x, permissions: { publish: "foo..bar" }} ] }',
     'subject "foo..bar" is not a valid subject'),
    ('authorization { users: [ {user: a, pass: x, permissions: { publish: { allow: "foo..bar" } }} ] }',
     'x.conf:1:70: subject "foo..bar" is not a valid subject'),
    ('authorization { users: [ {user: a, pass: x, permissions: { subscribe: "foo q1 extra" }} ] }',
     'subject "foo q1 extra" is not a valid subject'),
    ('authorization { users: [ {user: a, pass: x, permissions: { subscribe: "foo. q1" }} ] }',
     'subject "foo." is not a valid subject'),
    ('authorization { users: [ {user: a, pass: x, permissions: { foo: "x" }} ] }',
     'x.conf:1:59: Unknown field "foo" parsing permissions'),
    ('authorization { users: [ {user: a, pass: x, permissions: { publish: {allow: "x", foo: 1} }} ] }',
     "x.conf:1:81: Unknown field name \"foo\" parsing subject permissions, only 'allow' or 'deny' are permitted"),
    ('authorization { users: [ {user: a, pass: x, permissions: "x"} ] }',
     "x.conf:1:44: Expected permissions to be a map/struct, got x"),
    ("authorization { users: [ {user: a, pass: x, permissions: { publish: [ 1, 2 ] }} ] }",
     "x.conf:1:70: Subject in permissions array cannot be cast to string"),
    ("authorization { users: [ {user: a, pass: x, permissions: { publish: 5 }} ] }",
     "Expected subject permissions to be a subject, or array of subjects, got int64"),
    ('authorization { users: [ {user: a, pass: x, allowed_connection_types: ["FOO", "bar"]} ] }',
     'x.conf:1:44: invalid connection types ["FOO" "BAR"]'),
    ("authorization { users: [ {user: a, pass: x, allowed_connection_types: 5} ] }",
     "x.conf:1:44: error parsing allowed connection types: unsupported type int64"),
    ("authorization { users: [ {user: a, pass: x, account: foo} ] }", 'x.conf:1:44: unknown field "account"'),
    ("no_auth_user: 5", "x.conf:1:0: interface conversion: interface {} is int64, not string"),
    # Not supported by pynats-server (nats-server accepts them):
    ('authorization { auth_callout { issuer: "x", auth_users: [a] } }', "x.conf:1:0: auth callout is not supported"),
    ("authorization { users: [ {user: a, pass: x, proxy_required: true} ] }",
     "x.conf:1:44: proxy_required is not supported"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", ERRORS)
def test_errors(tmp_path: Path, text: str, message: str) -> None:
    assert failure(tmp_path, text) == message.replace("$U", UPUB)
