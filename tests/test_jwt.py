"""NATS JWTs without a server: decoding (and every way it fails), validation, minting,
creds files, the resolver's directory store, and the user checks of operator mode.

The error texts are nats-io/jwt's as nats-server 2.14 reports them; tests/test_jwt_auth.py
sends the same malformed tokens to the real nats-server and compares."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime, timezone

import pytest

from pynats_server import jwt
from pynats_server import nkeys_util as nk
from pynats_server.jwtjson import (
    GoError,
    go_marshal,
    raw_url_b64decode,
    raw_url_b64encode,
    unmarshal,
)
from pynats_server.operator import apply_template, build_permissions, validate_src, validate_times
from pynats_server.resolver import DirStore, ResolverError


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    return {
        "op": nk.create_operator(),
        "op2": nk.create_operator(),
        "acc": nk.create_account(),
        "sk": nk.create_account(),
        "user": nk.create_user(),
    }


def _claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _mk(payload: dict | bytes, signer: str, header: dict | None = None) -> str:
    h = raw_url_b64encode(go_marshal(header or {"typ": "JWT", "alg": "ed25519-nkey"}))
    p = raw_url_b64encode(payload if isinstance(payload, bytes) else go_marshal(payload))
    sig = raw_url_b64encode(nk.sign(signer, f"{h}.{p}".encode()))
    return f"{h}.{p}.{sig}"


# -- minting and decoding --------------------------------------------------------------------


def test_mint_and_decode_every_kind(keys) -> None:
    oseed, opub = keys["op"]
    aseed, apub = keys["acc"]
    useed, upub = keys["user"]
    op = jwt.new_operator(oseed, "OP", system_account=apub, signing_keys=[keys["op2"][1]])
    c = jwt.decode_operator(op)
    assert (c.sub, c.iss, c.name, c.system_account, c.signing_keys) == (opub, opub, "OP", apub, [keys["op2"][1]])
    assert c.validate().issues == []
    assert op.split(".")[0] == "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"  # {"typ":"JWT","alg":"ed25519-nkey"}

    acc = jwt.new_account(oseed, apub, "A", exports=[{"subject": "svc.>", "type": "service", "token_req": True}],
                          limits=jwt.account_limits(conn=3), revocations={upub: 100})
    a = jwt.decode_account(acc)
    assert a.sub == apub and a.iss == opub and a.name == "A"
    assert a.exports[0]["subject"] == "svc.>" and a.exports[0]["type"] == 2 and a.exports[0]["token_req"]
    assert a.limits["conn"] == 3 and a.limits["subs"] == -1
    assert a.revocations == {upub: 100}
    assert a.signing_keys == {}

    u = jwt.new_user(aseed, upub, "bob", pub_allow=["foo.>"], resp=(2, 1.5), bearer_token=True)
    uc = jwt.decode_user(u)
    assert (uc.sub, uc.iss, uc.name, uc.bearer_token) == (upub, apub, "bob", True)
    assert uc.nats["pub"] == {"allow": ["foo.>"], "deny": None}
    assert uc.nats["resp"] == {"max": 2, "ttl": 1_500_000_000}
    assert uc.nats["subs"] == uc.nats["payload"] == -1
    # The JWT ID is the library's: base32 of SHA-512/256 of the claims without it.
    raw = _claims(u)
    assert len(raw["jti"]) == 52 and raw["nats"]["type"] == "user" and raw["nats"]["version"] == 2

    act = jwt.new_activation(aseed, keys["sk"][1], "svc.a", "service")
    ac = jwt.decode_activation(act)
    assert (ac.sub, ac.iss, ac.import_subject, ac.import_type) == (keys["sk"][1], apub, "svc.a", "service")


def test_creds_file_round_trip(keys) -> None:
    aseed, _ = keys["acc"]
    useed, upub = keys["user"]
    token = jwt.new_user(aseed, upub)
    creds = jwt.format_user_creds(token, useed)
    assert creds.startswith("-----BEGIN NATS USER JWT-----\n" + token + "\n------END NATS USER JWT------\n")
    assert jwt.parse_decorated_jwt(creds) == token
    assert jwt.parse_decorated_seed(creds) == useed
    assert jwt.parse_decorated_jwt(token) == token  # not decorated: the text itself


def test_v1_tokens_are_read(keys) -> None:
    """A v1 token: alg `ed25519`, `type` at the top, signed over the claims part only."""
    oseed, opub = keys["op"]
    aseed, apub = keys["acc"]
    h = raw_url_b64encode(go_marshal({"typ": "JWT", "alg": "ed25519"}))
    body = {"jti": "X", "iat": 1, "iss": opub, "sub": apub, "name": "A", "type": "account",
            "nats": {"limits": {"conn": 5}, "signing_keys": [keys["sk"][1]]}}
    p = raw_url_b64encode(go_marshal(body))
    token = f"{h}.{p}.{raw_url_b64encode(nk.sign(oseed, p.encode()))}"
    a = jwt.decode_account(token)
    assert a.version == 1 and a.limits["conn"] == 5 and keys["sk"][1] in a.signing_keys
    # The same signed as v2 (over header.payload) fails the v1 check.
    bad = f"{h}.{p}.{raw_url_b64encode(nk.sign(oseed, f'{h}.{p}'.encode()))}"
    with pytest.raises(jwt.JWTError, match="claim failed V1 signature verification"):
        jwt.decode(bad)


# -- malformed tokens: the library's messages ------------------------------------------------


def _malformed(keys) -> list[tuple[str, str, str]]:
    oseed, opub = keys["op"]
    aseed, apub = keys["acc"]
    good = jwt.new_account(oseed, apub, "A")
    base = _claims(good)
    h, p, s = good.split(".")
    typ_number = raw_url_b64encode(b'{"typ":1}')
    header_array = raw_url_b64encode(b"[1]")
    return [
        ("garbage", "garbage", "expected 3 chunks"),
        ("four chunks", good + ".x", "expected 3 chunks"),
        ("bad base64 header", "e$J.e30.e30", "illegal base64 data at input byte 1"),
        ("truncated header", good[:9] + "." + p + "." + s, "illegal base64 data at input byte 8"),
        ("header json cut", _mk(base, oseed).replace(h, raw_url_b64encode(b'{"typ":')), "unexpected end of JSON input"),
        ("header array", f"{header_array}.{p}.{s}", "json: cannot unmarshal array into Go value of type jwt.Header"),
        ("typ number", f"{typ_number}.{p}.{s}",
         "json: cannot unmarshal number into Go struct field Header.typ of type string"),
        ("wrong alg", _mk(base, oseed, {"typ": "JWT", "alg": "HS256"}), 'unexpected "HS256" algorithm'),
        ("wrong typ", _mk(base, oseed, {"typ": "XYZ", "alg": "ed25519-nkey"}), 'not supported type "XYZ"'),
        ("claims json cut", _mk(b'{"sub":', oseed), "unexpected end of JSON input"),
        ("trailing data", _mk(b'{"sub":"x"} x', oseed), "invalid character 'x' after top-level value"),
        ("claims array", _mk(b"[]", oseed), "json: cannot unmarshal array into Go value of type jwt.identifier"),
        ("sub number", _mk({**base, "sub": 5}, oseed),
         "json: cannot unmarshal number into Go struct field AccountClaims.ClaimsData.sub of type string"),
        ("exp float", _mk({**base, "exp": 1.5}, oseed),
         "json: cannot unmarshal number 1.5 into Go struct field AccountClaims.ClaimsData.exp of type int64"),
        ("subs string", _mk({**base, "nats": {**base["nats"], "limits": {"subs": "x"}}}, oseed),
         "json: cannot unmarshal string into Go struct field OperatorLimits.nats.limits.NatsLimits.subs of type int64"),
        ("export type", _mk({**base, "nats": {**base["nats"], "exports": [{"subject": "x", "type": "foo"}]}}, oseed),
         'unknown export type "foo"'),
        ("export type number", _mk({**base, "nats": {**base["nats"], "exports": [{"subject": "x", "type": 5}]}}, oseed),
         "json: cannot unmarshal number into Go struct field Export.nats.exports.type of type string"),
        ("signing keys object", _mk({**base, "nats": {**base["nats"], "signing_keys": {"a": 1}}}, oseed),
         "json: cannot unmarshal object into Go struct field Account.nats.signing_keys of type []interface {}"),
        ("newer version", _mk({**base, "nats": {**base["nats"], "version": 3}}, oseed), "JWT was generated by a newer version "),
        ("version 0", _mk({**base, "nats": {**base["nats"], "version": 0}}, oseed),
         "library supports version 2 or less - received 0"),
        ("signed by another key", _mk(base, aseed), "claim failed V2 signature verification"),
        ("truncated signature", good[:-10], "claim failed V2 signature verification"),
        ("signature not base64", f"{h}.{p}.!!", "illegal base64 data at input byte 0"),
        ("truncated claims", f"{h}.{p[:-7]}.{s}", "unexpected end of JSON input"),
        ("NaN", _mk(b'{"exp":NaN}', oseed), "invalid character 'N' looking for beginning of value"),
        ("int overflow", _mk({**base, "exp": 10**20}, oseed),
         "json: cannot unmarshal number 100000000000000000000 into Go struct field AccountClaims.ClaimsData.exp of type int64"),
    ]


def test_malformed_tokens(keys) -> None:
    for name, token, want in _malformed(keys):
        with pytest.raises(jwt.JWTError) as e:
            jwt.decode_account(token)
        assert str(e.value) == want, name


def test_issuer_roles(keys) -> None:
    oseed, opub = keys["op"]
    aseed, apub = keys["acc"]
    useed, upub = keys["user"]
    # A user JWT must be issued by an account key; an account JWT by an operator or account.
    with pytest.raises(jwt.JWTError, match=r"unable to validate expected prefixes - \[account\]"):
        jwt.decode_user(_mk({"iss": opub, "sub": upub, "nats": {"type": "user", "version": 2}}, oseed))
    with pytest.raises(jwt.JWTError, match=r"unable to validate expected prefixes - \[account operator\]"):
        jwt.decode_account(_mk({"iss": upub, "sub": apub, "nats": {"type": "account", "version": 2}}, useed))
    with pytest.raises(jwt.JWTError, match=r"unable to validate expected prefixes - \[operator\]"):
        jwt.decode_operator(_mk({"iss": apub, "sub": opub, "nats": {"type": "operator", "version": 2}}, aseed))
    # The wrong kind for what is asked.
    with pytest.raises(jwt.JWTError, match="not user claim"):
        jwt.decode_user(jwt.new_account(oseed, apub))
    with pytest.raises(jwt.JWTError, match="not operator claim"):
        jwt.decode_operator(jwt.new_user(aseed, upub))
    # Minting refuses the same.
    with pytest.raises(jwt.JWTError):
        jwt.new_user(oseed, upub)


def test_go_base64_and_json_details() -> None:
    assert raw_url_b64decode("aGk") == b"hi"
    assert raw_url_b64decode("aG\nk") == b"hi"  # CR and LF are skipped, as Go does
    for text, pos in (("a", 0), ("abcde", 4), ("ab=", 2), ("a+b", 1)):
        with pytest.raises(GoError, match=f"illegal base64 data at input byte {pos}$"):
            raw_url_b64decode(text)
    # Keys match case-insensitively, the last one winning; unknown keys are ignored.
    from pynats_server.jwt import _HEADER

    assert unmarshal(b'{"TYP":"a","typ":"b","x":1,"Alg":"c"}', _HEADER) == {"typ": "b", "alg": "c"}
    assert unmarshal(b'{"typ":"\\ud800"}', _HEADER)["typ"] == "\ufffd"


# -- validation -------------------------------------------------------------------------------


def test_time_validation(keys) -> None:
    aseed, _ = keys["acc"]
    _, upub = keys["user"]
    now = int(time.time())
    expired = jwt.decode_user(jwt.new_user(aseed, upub, exp=now - 10))
    vr = expired.validate()
    assert vr.is_blocking(True) and not vr.is_blocking(False)
    assert vr.go_repr() == "&{Issues:[claim is expired]}"
    early = jwt.decode_user(jwt.new_user(aseed, upub, nbf=now + 100))
    assert early.validate().go_repr() == "&{Issues:[claim is not yet valid]}"
    assert jwt.decode_user(jwt.new_user(aseed, upub, exp=now + 100)).validate().issues == []


def test_claims_validation(keys) -> None:
    oseed, _ = keys["op"]
    aseed, apub = keys["acc"]
    _, upub = keys["user"]
    u = jwt.decode_user(jwt.new_user(aseed, upub, pub_allow=["foo q"], src=["bad"], times=[("25:00:00", "x")],
                                     issuer_account="nope"))
    assert u.validate().errors() == [
        'Permission Subject "foo q" is not allowed to contain queue',
        'invalid cidr "bad" in user src limits',
        'start in time range is invalid "25:00:00"',
        'end in time range is invalid "x"',
        "account_id is not an account public key",
    ]
    a = jwt.decode_account(jwt.new_account(
        oseed, apub, exports=[{"subject": "a.>", "type": "stream"}, {"subject": "a.b", "type": "stream"},
                              {"subject": "b", "type": "service", "response_type": "Bogus"}],
        imports=[{"subject": "x", "type": "stream"}],
        limits=jwt.account_limits(wildcards=False, exports=5)))
    assert sorted(a.validate().errors()) == sorted([
        "account to import from is not specified",
        'invalid response type for service: "Bogus"',
        'stream export subject "a.>" already exports "a.b"',
        "the account contains wildcard exports that are not allowed by the operator",
    ])
    # An activation token in an import is checked against the import.
    other = keys["sk"][1]
    act = jwt.new_activation(aseed, other, "svc.x", "stream")
    vr = jwt.ValidationResults()
    jwt.validate_import({"subject": "svc.y", "account": apub, "token": act, "type": 1}, other, vr)
    assert vr.errors() == ['activation token import subject "svc.x" doesn\'t match import "svc.y"']
    vr = jwt.ValidationResults()
    jwt.validate_import({"subject": "svc.x", "account": apub, "token": act, "type": 2}, other, vr)
    assert vr.errors() == ["mismatch between token import type stream and type of import service"]


def test_revocations(keys) -> None:
    assert not jwt.is_revoked(None, "U", 10)
    assert jwt.is_revoked({"U": 10}, "U", 10)  # issued at or before the revocation time
    assert not jwt.is_revoked({"U": 10}, "U", 11)
    assert jwt.is_revoked({"*": 20}, "V", 15)
    aseed, apub = keys["acc"]
    _, upub = keys["user"]
    a = jwt.decode_account(jwt.new_account(keys["op"][0], apub, revocations={upub: 2_000_000_000}))
    assert a.is_claim_revoked(jwt.decode_user(jwt.new_user(aseed, upub)))


# -- user checks of operator mode ---------------------------------------------------------------


def test_src_and_times() -> None:
    assert validate_src(None, "1.2.3.4")
    assert validate_src(["1.2.0.0/16"], "1.2.3.4")
    assert not validate_src(["10.0.0.0/8"], "1.2.3.4")
    assert validate_src(["::1/128"], "::1")
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    ok, left = validate_times([{"start": "11:00:00", "end": "13:00:00"}], "UTC", now)
    assert ok and left == 3600
    assert not validate_times([{"start": "13:00:00", "end": "14:00:00"}], "UTC", now)[0]
    # A window across midnight.
    ok, left = validate_times([{"start": "22:00:00", "end": "12:30:00"}], "UTC", now)
    assert ok and left == 1800
    assert validate_times(None, "", now) == (True, 0.0)


def test_permissions_from_claims() -> None:
    assert build_permissions({"pub": {}, "sub": {}}) is None
    p = build_permissions({"pub": {"allow": ["a"]}, "sub": {"deny": ["b"]}, "resp": {"max": 3, "ttl": 2_000_000_000}})
    assert p is not None
    assert (p.publish_allow, p.publish_deny, p.subscribe_allow, p.subscribe_deny) == (["a"], None, None, ["b"])
    assert (p.response.max_msgs, p.response.expires) == (3, 2.0)
    # Responses only: publishing limited to the replies.
    p = build_permissions({"resp": {"max": 0, "ttl": 0}})
    assert p is not None and p.publish_allow == []


def test_scoped_signing_key_templates(keys) -> None:
    from pynats_server.accounts import Account

    aseed, apub = keys["acc"]
    useed, upub = keys["user"]
    uc = jwt.decode_user(jwt.new_user(aseed, upub, "bob", scoped=True, tags=["dept:eng", "dept:ops"]))
    acc = Account(apub)
    acc.name_tag = "A"
    t = {"pub": {"allow": ["{{name()}}.>", "{{tag(dept)}}.x"]}, "sub": {"allow": ["{{account-name()}}.{{subject()}}"],
                                                                        "deny": None}}
    out = apply_template(t, uc, acc)
    assert out["pub"]["allow"] == ["bob.>", "eng.x", "ops.x"]
    assert out["sub"]["allow"] == [f"A.{upub}"]
    # A missing tag in an allow list drops the entry (and denies all when none is left).
    out = apply_template({"pub": {"allow": ["{{tag(missing)}}.x"]}}, uc, acc)
    assert out["pub"]["allow"] == [] and out["pub"]["deny"] == [">"]


# -- the directory store --------------------------------------------------------------------------


def test_dir_store(tmp_path, keys) -> None:
    oseed, _ = keys["op"]
    a1seed, a1 = nk.create_account()
    a2seed, a2 = nk.create_account()
    changed: list[str] = []
    st = DirStore(str(tmp_path), delete="rename")
    st.changed = changed.append
    t1 = jwt.new_account(oseed, a1, "A1", iat=100)
    st.save(a1, t1)
    assert (tmp_path / f"{a1}.jwt").read_text() == t1  # nats-server's layout
    assert st.load(a1) == t1 and changed == [a1]
    st.save(a1, t1)
    assert changed == [a1]  # the same JWT again: no change
    h1 = st.hash()
    # Older JWTs do not replace newer ones when merged; newer ones do.
    st.save_if_newer(a1, jwt.new_account(oseed, a1, "old", iat=50))
    assert st.load(a1) == t1
    t1b = jwt.new_account(oseed, a1, "new", iat=200)
    st.save_if_newer(a1, t1b)
    assert st.load(a1) == t1b and st.hash() != h1
    with pytest.raises(ResolverError, match="jwt subject nkey and provided nkey do not match"):
        st.save_if_newer(a1, jwt.new_account(oseed, a2, iat=300))
    st.save(a2, jwt.new_account(oseed, a2, "A2"))
    packed = st.pack(1)
    assert sorted(p.split("|")[0] for p in packed) == sorted([a1, a2])
    other = DirStore(str(tmp_path / "other"))
    other.merge("\n".join(packed))
    assert other.hash() == st.hash() and sorted(other.list_accounts()) == sorted([a1, a2])
    with pytest.raises(ResolverError, match="didn't contain 2 entries"):
        other.merge("nope")
    # Reopening the directory tracks what is there.
    assert DirStore(str(tmp_path)).hash() == st.hash()
    deleted: list[str] = []
    st.deleted = deleted.append
    st.delete(a2)
    assert deleted == [a2] and (tmp_path / f"{a2}.jwt.deleted").exists()
    with pytest.raises(ResolverError, match="store is not set up to for delete"):
        other.delete(a1)


def test_dir_store_limits_and_expiry(tmp_path, keys) -> None:
    oseed, _ = keys["op"]
    accts = [nk.create_account()[1] for _ in range(3)]
    full = DirStore(str(tmp_path / "full"), limit=2)
    full.save(accts[0], jwt.new_account(oseed, accts[0]))
    full.save(accts[1], jwt.new_account(oseed, accts[1]))
    with pytest.raises(ResolverError, match="jwt store is full"):
        full.save(accts[2], jwt.new_account(oseed, accts[2]))
    now = [1000.0]
    cache = DirStore(str(tmp_path / "cache"), limit=2, evict_on_limit=True, ttl=10, clock=lambda: now[0])
    cache.save(accts[0], jwt.new_account(oseed, accts[0]))
    cache.save(accts[1], jwt.new_account(oseed, accts[1]))
    cache.load(accts[0])  # used: the other is now the oldest
    cache.save(accts[2], jwt.new_account(oseed, accts[2]))
    assert sorted(cache.items) == sorted([accts[0], accts[2]])
    assert not os.path.exists(cache.path_for(accts[1]))
    now[0] += 11
    assert sorted(cache.expire()) == sorted([accts[0], accts[2]]) and len(cache) == 0
    # Without a ttl, a JWT's own expiry counts.
    exp_store = DirStore(str(tmp_path / "exp"))
    exp_store.save(accts[0], jwt.new_account(oseed, accts[0], exp=int(time.time()) - 1))
    assert exp_store.expire() == [accts[0]]


def test_mutated_tokens_only_ever_give_jwt_errors(keys) -> None:
    """Bytes flipped, cut or inserted anywhere in a valid token: a JWTError or a decoded
    token, never another exception (bounded, deterministic)."""
    import random

    rng = random.Random(1234)
    oseed, _ = keys["op"]
    aseed, apub = keys["acc"]
    _, upub = keys["user"]
    tokens = [
        jwt.new_account(oseed, apub, exports=[{"subject": "a.*", "type": "service", "account_token_position": 2}],
                        signing_keys=[jwt.user_scope(keys["sk"][1])]),
        jwt.new_user(aseed, upub, pub_allow=["a"], src=["1.2.3.4/32"], times=[("01:00:00", "02:00:00")]),
    ]
    alphabet = "ABCxyz019-_.=\"{}[]:, \\\x00\xff\u2028"
    for _ in range(250):
        t = list(rng.choice(tokens))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            i = rng.randrange(len(t))
            if op < 0.4:
                t[i] = rng.choice(alphabet)
            elif op < 0.7:
                del t[i:i + rng.randint(1, 20)]
            else:
                t.insert(i, rng.choice(alphabet))
        text = "".join(t)
        for fn in (jwt.decode, jwt.decode_generic):
            try:
                c = fn(text)
            except jwt.JWTError:
                continue
            c.validate()
    # Payloads that decode but hold every kind of wrong value.
    for raw in (b'{"nats":{"type":"user","version":2,"pub":{"allow":[1,{}]},"src":5,"times":[null,1]}}',
                b'{"nats":{"type":"account","version":2,"exports":[{"type":null}],"signing_keys":[{"kind":"user_scope","key":5}]}}',
                b'{"nats":{"type":"account","version":2,"imports":[{"token":"x.y.z","type":"stream"}],"revocations":{"a":"b"}}}',
                b'{"iss":"' + apub.encode() + b'","nats":{"type":"activation","version":2,"kind":"nope"}}'):
        try:
            jwt.decode(_mk(raw, aseed)).validate()
        except jwt.JWTError:
            pass
