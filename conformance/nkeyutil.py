"""NKey helpers for the nkey cases: public key of a seed, signature of a nonce.

The seeds in the case files are fixed test keys (they protect nothing). A signature is what a
client puts in CONNECT "sig": the Ed25519 signature of the INFO nonce, base64url without padding.
"""

from __future__ import annotations

import base64

import nkeys


def public_key(seed: str) -> str:
    """The public key (U..., A..., N...) of an nkey seed (S...)."""
    return nkeys.from_seed(bytearray(seed.encode())).public_key.decode()


def sign(seed: str, data: bytes, std: bool = False) -> str:
    """Ed25519 signature of ``data`` with ``seed``: base64url without padding (what clients
    send), or with ``std`` standard base64 with padding."""
    sig = nkeys.from_seed(bytearray(seed.encode())).sign(data)
    if std:
        return base64.b64encode(sig).decode()
    return base64.urlsafe_b64encode(sig).decode().rstrip("=")
