"""Account resolvers: where operator mode finds account JWTs (nats-server accounts.go,
dirstore.go).

- `MemResolver` (`resolver: MEMORY`): the JWTs of `resolver_preload`, in memory.
- `DirStore` (`resolver { type: full|cache, dir: ... }`): one file per account,
  `<dir>/<account public key>.jwt` holding the JWT as sent, the layout nats-server writes (a
  directory can be shared between the two servers, one at a time). It tracks what it holds
  the way nats-server's DirJWTStore does: an expiry per JWT (the JWT's own `exp`, or for a
  cache now + `ttl`), a least-recently-used order (a full cache evicts the oldest), a limit,
  and a hash (XOR of the SHA-256 of every JWT) that servers compare to see whether their
  stores differ.

File access is synchronous (small files, rarely); the rest is sans-IO: the caller runs the
expiry check on a timer and is told of changes through the `changed`/`deleted` callbacks.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from . import jwt, nkeys_util

FILE_EXT = ".jwt"
_NEVER = float("inf")

NO_DELETE, RENAME_DELETED, HARD_DELETE = "none", "rename", "hard"


class ResolverError(Exception):
    """A fetch or store failed; the text is nats-server's."""


class MemResolver:
    """`resolver: MEMORY`: the preloaded JWTs (writable, never persisted)."""

    kind = "MEM"
    read_only = False
    tracking_update = False  # claims updates come through the server's generic handler

    def __init__(self) -> None:
        self.jwts: dict[str, str] = {}

    def fetch(self, name: str) -> str:
        token = self.jwts.get(name)
        if token is None:
            raise ResolverError("account missing")
        return token

    def store(self, name: str, token: str) -> None:
        self.jwts[name] = token

    def close(self) -> None:
        pass


@dataclass
class _Item:
    expires: float  # unix seconds; inf: never
    digest: bytes


class DirStore:
    """A directory of account JWTs (nats-server's DirJWTStore with expiration tracking)."""

    def __init__(self, directory: str, *, delete: str = NO_DELETE, limit: int = 0,
                 evict_on_limit: bool = False, ttl: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        os.makedirs(directory, mode=0o750, exist_ok=True)
        self.directory = os.path.abspath(directory)
        self.delete_type = delete
        self.limit = limit if limit > 0 else 1 << 62
        self.evict_on_limit = evict_on_limit
        self.ttl = ttl
        self.clock = clock
        self.read_only = False
        self.items: OrderedDict[str, _Item] = OrderedDict()  # least recently used first
        self._hash = bytearray(32)
        self.changed: Callable[[str], None] | None = None
        self.deleted: Callable[[str], None] | None = None
        self.operator_keys: set[str] = set()  # who may delete (self-signed requests)
        for name in sorted(os.listdir(self.directory)):
            if name.endswith(FILE_EXT):
                path = os.path.join(self.directory, name)
                try:
                    with open(path, encoding="utf-8", errors="surrogateescape") as f:
                        token = f.read()
                except OSError:
                    continue
                self._track(name[: -len(FILE_EXT)], token)

    # -- tracking (expirationTracker)

    def _expiry(self, token: str) -> float:
        if self.ttl:
            return self.clock() + self.ttl
        try:
            exp = jwt.decode_generic(token).exp
        except jwt.JWTError:
            exp = 0
        return float(exp) if exp else _NEVER

    def _xor(self, digest: bytes) -> None:
        for i, b in enumerate(digest):
            self._hash[i] ^= b

    def _track(self, pub: str, token: str) -> None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        old = self.items.get(pub)
        if old is not None:
            self._xor(old.digest)
            old.expires, old.digest = self._expiry(token), digest
        else:
            self.items[pub] = _Item(self._expiry(token), digest)
        self._xor(digest)

    def _untrack(self, pub: str) -> None:
        it = self.items.pop(pub, None)
        if it is not None:
            self._xor(it.digest)

    def _touch(self, pub: str) -> None:
        it = self.items.get(pub)
        if it is None:
            return
        if self.ttl:
            it.expires = self.clock() + self.ttl
        if self.evict_on_limit:
            self.items.move_to_end(pub)

    def hash(self) -> bytes:
        return bytes(self._hash)

    def __len__(self) -> int:
        return len(self.items)

    # -- files

    def path_for(self, pub: str) -> str:
        if len(pub) < 2 or not nkeys_util.is_valid_public_key(pub):
            return ""
        return os.path.join(self.directory, pub + FILE_EXT)

    def load(self, pub: str) -> str:
        """The stored JWT; ResolverError("invalid public key") or FileNotFoundError."""
        path = self.path_for(pub)
        if not path:
            raise ResolverError("invalid public key")
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            token = f.read()
        self._touch(pub)
        return token

    def _write(self, path: str, pub: str, token: str) -> bool:
        if not token:
            raise ResolverError("invalid JWT")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        it = self.items.get(pub)
        if it is not None:
            self._touch(pub)
            if it.digest == digest:
                return False
        elif len(self.items) >= self.limit:
            if not self.evict_on_limit:
                raise ResolverError("jwt store is full")
            oldest = next(iter(self.items))
            try:
                os.remove(self.path_for(oldest))
            except FileNotFoundError:
                pass
            self._untrack(oldest)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(token)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
        self._track(pub, token)
        return True

    def save(self, pub: str, token: str) -> None:
        """Store unconditionally (a claims update); `changed` is called if it differs."""
        if self.read_only:
            raise ResolverError("store is read-only")
        path = self.path_for(pub)
        if not path:
            raise ResolverError("invalid public key")
        if self._write(path, pub, token) and self.changed is not None:
            self.changed(pub)

    def save_if_newer(self, pub: str, token: str) -> None:
        """Store unless what is stored is the same JWT or was issued later (merges, preloads,
        fetched JWTs)."""
        if self.read_only:
            raise ResolverError("store is read-only")
        path = self.path_for(pub)
        if not path:
            raise ResolverError("invalid public key")
        if os.path.exists(path):
            try:
                new = jwt.decode_generic(token)
            except jwt.JWTError as e:
                raise ResolverError(str(e)) from None
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                existing_token = f.read()
            try:
                existing = jwt.decode_generic(existing_token)
            except jwt.JWTError:
                existing = None
            if existing is not None:
                if existing.jti == new.jti or existing.iat > new.iat:
                    return
                if new.sub != pub:
                    raise ResolverError("jwt subject nkey and provided nkey do not match")
                if existing.sub != new.sub:
                    raise ResolverError("subject of existing and new jwt do not match")
        if self._write(path, pub, token) and self.changed is not None:
            self.changed(pub)

    def delete(self, pub: str) -> None:
        if self.read_only:
            raise ResolverError("store is read-only")
        if self.delete_type == NO_DELETE:
            raise ResolverError("store is not set up to for delete")
        path = self.path_for(pub)
        try:
            if self.delete_type == RENAME_DELETED:
                os.replace(path, path + ".deleted")
            else:
                os.remove(path)
        except FileNotFoundError:
            return
        self._untrack(pub)
        if self.deleted is not None:
            self.deleted(pub)

    def expire(self) -> list[str]:
        """Remove the JWTs whose time is up (the store's periodic check); their keys."""
        now = self.clock()
        gone = []
        for pub, it in list(self.items.items()):
            if it.expires <= now:
                try:
                    os.remove(self.path_for(pub))
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                self._untrack(pub)
                gone.append(pub)
        return gone

    def expire_interval(self) -> float:
        """How often to run `expire` (nats-server: half the ttl, at most a minute)."""
        check = self.ttl / 2 if self.ttl else 60.0
        return min(check or 60.0, 60.0)

    # -- packs (synchronising stores between servers)

    def pack(self, max_per_msg: int = 1) -> list[str]:
        """`pub|jwt` lines of every tracked, unexpired JWT, `max_per_msg` per message."""
        out: list[str] = []
        cur: list[str] = []
        now = time.time()
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(FILE_EXT):
                continue
            pub = name[: -len(FILE_EXT)]
            if pub not in self.items:
                continue
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8", errors="surrogateescape") as f:
                    token = f.read()
            except OSError:
                continue
            if not token:
                continue
            try:
                exp = jwt.decode_generic(token).exp
            except jwt.JWTError:
                exp = 0
            if exp and exp < now:
                continue
            cur.append(f"{pub}|{token}")
            if len(cur) == max_per_msg:
                out.append("\n".join(cur))
                cur = []
        if cur:
            out.append("\n".join(cur))
        return out

    def list_accounts(self) -> list[str]:
        return [p.split("|", 1)[0] for msg in self.pack(1) for p in msg.split("\n")]

    def merge(self, pack: str) -> None:
        """Take in another server's pack (JWTs newer than ours, or ones we lack)."""
        for line in pack.split("\n"):
            if not line:
                continue
            parts = line.split("|")
            if len(parts) != 2:
                raise ResolverError(f"line in package didn't contain 2 entries: {_go_q(line)}")
            if not nkeys_util.is_valid_public_key(parts[0], nkeys_util.PREFIX_ACCOUNT):
                raise ResolverError("key to merge is not a valid public account key")
            self.save_if_newer(parts[0], parts[1])

    def close(self) -> None:
        pass


def _go_q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class DirResolver:
    """`resolver { type: full|cache }`: a DirStore, plus asking other servers for JWTs it
    lacks (the service in resolver_service.py does the asking)."""

    read_only = False
    tracking_update = True  # claims updates go to the resolver's own handlers

    def __init__(self, kind: str, store: DirStore, timeout: float, interval: float) -> None:
        self.kind = kind  # FULL or CACHE
        self.dir = store
        self.timeout = timeout or 1.9  # nats-server's DEFAULT_ACCOUNT_FETCH_TIMEOUT
        self.interval = interval if interval > 0 else 60.0

    def fetch(self, name: str) -> str:
        """The stored JWT; ResolverError when it is not here (the caller may ask the
        cluster)."""
        try:
            return self.dir.load(name)
        except FileNotFoundError:
            raise ResolverError("account missing") from None

    def store(self, name: str, token: str) -> None:
        self.dir.save_if_newer(name, token)

    def close(self) -> None:
        self.dir.close()


def make_resolver(kind: str, directory: str = "", *, allow_delete: bool = False, hard_delete: bool = False,
                  limit: int = 0, ttl: float = 0.0, interval: float = 0.0, timeout: float = 0.0) -> MemResolver | DirResolver:
    """The resolver of a ResolverOptions (nats-server NewDirAccResolver / NewCacheDirAccResolver)."""
    if kind == "MEM":
        return MemResolver()
    if kind == "FULL":
        delete = (HARD_DELETE if hard_delete else RENAME_DELETED) if allow_delete else NO_DELETE
        return DirResolver("FULL", DirStore(directory, delete=delete, limit=limit), timeout, interval)
    store = DirStore(directory, delete=HARD_DELETE, limit=limit if limit > 0 else 1000,
                     evict_on_limit=True, ttl=ttl)
    return DirResolver("CACHE", store, timeout, 0.0)
