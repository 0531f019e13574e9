"""JWT helpers for the operator-mode cases (pycases/jwt.py): a fresh operator, system
account and account `A` per case, users and special-purpose tokens, the server config, and
the CONNECT line of a JWT user.

JWTs are minted with pynats_server.jwt (nats-io/jwt v2's format); the Go targets verify
them, so a minting mistake would show as a failure there. Keys are made per case: nothing
that expires is committed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pynats_server import jwt
from pynats_server import nkeys_util as nk
from pynats_server.testing import OperatorSetup


class JWTSetup(OperatorSetup):
    """OperatorSetup with an account `A` (with a signing key and a scoped signing key, and
    `limits` if given) and the tokens the cases need."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        super().__init__()
        self.sk = nk.create_account()
        self.scoped = nk.create_account()
        self.revoked = nk.create_user()
        self.foreign_op = nk.create_operator()
        self.foreign_acc = nk.create_account()
        self.account(
            "A",
            limits=jwt.account_limits(**(limits or {})),
            signing_keys=[self.sk[1], jwt.user_scope(self.scoped[1], template=jwt.user_nats(pub_allow=["scoped.>"]))],
            revocations={self.revoked[1]: int(time.time())},
        )

    def config(self, resolver: str = "MEMORY", directory: str = "", extra: str = "") -> str:
        text = super().config(resolver, directory, extra)
        if resolver.upper() in ("MEM", "MEMORY"):
            # An account of another operator, preloaded: its JWT does not verify here.
            foreign = jwt.new_account(self.foreign_op[0], self.foreign_acc[1], "X")
            text = text.replace("resolver_preload {", f'resolver_preload {{\n  {self.foreign_acc[1]}: "{foreign}"', 1)
        return text

    def foreign_user(self) -> tuple[str, str, dict[str, Any]]:
        useed, upub = nk.create_user()
        return jwt.new_user(self.foreign_acc[0], upub), useed, {}

    def unknown_account_user(self) -> tuple[str, str, dict[str, Any]]:
        useed, upub = nk.create_user()
        return jwt.new_user(nk.create_account()[0], upub), useed, {}

    def revoked_user(self) -> tuple[str, str, dict[str, Any]]:
        return jwt.new_user(self.accounts["A"]["seed"], self.revoked[1], iat=int(time.time()) - 60), self.revoked[0], {}

    def unknown_signer_user(self) -> tuple[str, str, dict[str, Any]]:
        useed, upub = nk.create_user()
        return jwt.new_user(nk.create_account()[0], upub, issuer_account=self.pub("A")), useed, {}

    def signing_key_user(self) -> tuple[str, str]:
        useed, upub = nk.create_user()
        return jwt.new_user(self.sk[0], upub, issuer_account=self.pub("A")), useed

    def scoped_user(self) -> tuple[str, str]:
        useed, upub = nk.create_user()
        return jwt.new_user(self.scoped[0], upub, issuer_account=self.pub("A"), scoped=True), useed

    def old_user(self, account: str) -> tuple[str, str, str]:
        """(seed, public key, JWT) of a user issued a minute ago (so a revocation at "now - 5 s" applies)."""
        useed, upub = nk.create_user()
        return useed, upub, jwt.new_user(self.accounts[account]["seed"], upub, iat=int(time.time()) - 60)

    def private_service(self) -> None:
        """SVC exports `svc.>` as a private service; OK imports it with an activation token,
        NO without one."""
        self.account("SVC", exports=[{"subject": "svc.>", "type": "service", "token_req": True}])
        self.account("OK")
        token = self.activation("SVC", "OK", "svc.>", "service")
        self.account("OK", imports=[{"subject": "svc.>", "account": self.pub("SVC"), "type": "service", "token": token}])
        self.account("NO", imports=[{"subject": "svc.>", "account": self.pub("SVC"), "type": "service"}])


def connect_line(token: str, seed: str | None, nonce: str, **extra: Any) -> bytes:
    """`CONNECT {...}\\r\\n` of a JWT user (signed nonce unless `seed` is None)."""
    co: dict[str, Any] = {"verbose": False, "pedantic": False}
    if token:
        co["jwt"] = token
    if seed is not None:
        co["sig"] = nk.sign_nonce(seed, nonce)
    co.update(extra)
    return b"CONNECT " + json.dumps(co).encode() + b"\r\n"
