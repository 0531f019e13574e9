"""NATS nkeys: public key decoding and ed25519 signature checks, plus keys for tests.

An encoded nkey is base32 (no padding) of: a prefix byte naming its role (U user, A account,
O operator, N server, C cluster), the 32-byte ed25519 public key, and a CRC-16 (little
endian) of those bytes. Seeds (`S...`) hold two prefix bytes and the 32-byte private seed.

The encoding helpers and the CRC come from the `nkeys` package (nats-io/nkeys.py); it has no
way to verify a signature from a public key alone, so that part uses PyNaCl (which `nkeys`
depends on) directly. Both are imported on first use: a server without nkey users never
loads them. Sans-IO; the JWT support will use `verify` for its signature checks too.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

# Prefix bytes (nkeys.PREFIX_BYTE_*), spelled out so that callers need not import nkeys.
PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_SERVER = 13 << 3
PREFIX_CLUSTER = 2 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3
_PUBLIC_PREFIXES = (PREFIX_OPERATOR, PREFIX_SERVER, PREFIX_CLUSTER, PREFIX_ACCOUNT, PREFIX_USER)

_B32 = re.compile(r"[A-Z2-7]*")
_RAW_URL64 = re.compile(r"[A-Za-z0-9_-]*")
_STD64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class NkeyError(ValueError):
    """Not a valid public nkey (of the expected role)."""


def _nkeys() -> Any:
    import nkeys

    return nkeys


def decode_public_key(key: str, prefix: int | None = None) -> bytes:
    """The 32-byte ed25519 public key of an encoded public nkey; NkeyError when `key` is
    not one (bad base32, bad checksum, not a public role, or not role `prefix` if given)."""
    if not isinstance(key, str) or not key.isascii() or not _B32.fullmatch(key):
        raise NkeyError("nkeys: invalid encoded key")
    try:
        raw = base64.b32decode(key + "=" * (-len(key) % 8))
    except (binascii.Error, ValueError):
        raise NkeyError("nkeys: invalid encoded key") from None
    if len(raw) < 4:
        raise NkeyError("nkeys: invalid encoded key")
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if _nkeys().crc16(body) != crc:
        raise NkeyError("nkeys: invalid checksum")
    role = body[0]
    if role not in _PUBLIC_PREFIXES or (prefix is not None and role != prefix):
        raise NkeyError("nkeys: invalid public key")
    if len(body) != 33:
        raise NkeyError("nkeys: invalid public key")
    return bytes(body[1:])


def is_valid_public_key(key: str, prefix: int | None = None) -> bool:
    try:
        decode_public_key(key, prefix)
    except NkeyError:
        return False
    return True


def is_valid_user_key(key: str) -> bool:
    """nkeys.IsValidPublicUserKey: what a config `users` entry's `nkey` must be."""
    return is_valid_public_key(key, PREFIX_USER)


def verify(public_key: str, data: bytes, sig: bytes) -> bool:
    """Is `sig` an ed25519 signature of `data` by the key `public_key` (encoded nkey)?"""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    raw = decode_public_key(public_key)
    try:
        VerifyKey(raw).verify(data, sig)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def check_nonce_sig(public_key: str, sig: str, nonce: bytes) -> str:
    """"" when `sig` is `public_key`'s signature of the INFO nonce, else nats-server's debug
    line for the failure."""
    if not sig:
        return "Signature missing"
    raw = decode_sig(sig)
    if raw is None:
        return "Signature not valid base64"
    try:
        ok = verify(public_key, nonce, raw)
    except NkeyError as e:
        return f"User nkey not valid: {e}"
    return "" if ok else "Signature not verified"


def decode_sig(sig: str) -> bytes | None:
    """A CONNECT `sig` as nats-server reads it: unpadded base64url, else padded standard
    base64 (CR and LF are skipped, as Go's decoders do). None when it is neither."""
    s = sig.replace("\r", "").replace("\n", "")
    if not s.isascii():
        return None
    if _RAW_URL64.fullmatch(s) and len(s) % 4 != 1:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if len(s) % 4 == 0 and _STD64.fullmatch(s):
        try:
            return base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


# -- keys for tests and tools --------------------------------------------------------------


def create_seed(prefix: int) -> tuple[str, str]:
    """A new key of role `prefix`: (seed `S...`, public key)."""
    nk = _nkeys()
    seed = nk.encode_seed(os.urandom(32), prefix)
    return seed.decode(), nk.from_seed(seed).public_key.decode()


def create_user() -> tuple[str, str]:
    """A new user key: (seed `SU...`, public key `U...`)."""
    return create_seed(PREFIX_USER)


def create_account() -> tuple[str, str]:
    return create_seed(PREFIX_ACCOUNT)


def create_operator() -> tuple[str, str]:
    return create_seed(PREFIX_OPERATOR)


def public_key(seed: str) -> str:
    return _nkeys().from_seed(seed.encode()).public_key.decode()


def sign(seed: str, data: bytes) -> bytes:
    """The raw 64-byte ed25519 signature of `data` with the key of `seed`."""
    return bytes(_nkeys().from_seed(seed.encode()).sign(data))


def sign_nonce(seed: str, nonce: str) -> str:
    """The CONNECT `sig` for an INFO `nonce`, as NATS clients send it (unpadded base64url)."""
    return base64.urlsafe_b64encode(sign(seed, nonce.encode())).rstrip(b"=").decode()
