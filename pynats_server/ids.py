"""Identifiers in nats-server's formats: nkey-style server ids, nonces, nuid-style names."""

from __future__ import annotations

import base64
import os
import secrets
import string

PREFIX_SERVER = 13 << 3  # "N"
PREFIX_CURVE = 23 << 3  # "X"

_BASE62 = string.digits + string.ascii_letters


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum nkeys appends."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_nkey(prefix: int, key: bytes) -> str:
    raw = bytes([prefix]) + key
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def server_id() -> str:
    """A 56-character public-key-shaped id starting with N, as nats-server's."""
    return encode_nkey(PREFIX_SERVER, os.urandom(32))


def curve_key() -> str:
    """An x25519-public-key-shaped id starting with X (INFO `xkey`)."""
    return encode_nkey(PREFIX_CURVE, os.urandom(32))


def nonce() -> str:
    return base64.urlsafe_b64encode(os.urandom(11)).decode().rstrip("=")


def nuid() -> str:
    """A 22-character base62 name, like nats-server's generated cluster names."""
    return "".join(secrets.choice(_BASE62) for _ in range(22))
