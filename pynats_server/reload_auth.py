"""What a configuration reload does to connections already in: accounts updated in place,
every client's authorization checked again, route permissions and route authorization
(nats-server reload.go reloadAuthorization, reloadClusterPermissions, recheckPinnedCerts;
client.go processSubsOnConfigReload).

Clients, as nats-server treats them (DESIGN.md, "Reload"):
- a client whose user (or nkey) is gone from the users list, or now belongs to another
  account, is closed without a word ("Client Closed"): it reconnects and authenticates
  afresh, into its new account;
- every other client is authenticated again from the CONNECT options it sent (an nkey user
  against the nonce its INFO carried, a no_auth_user client as that user); one that no longer
  passes gets `-ERR 'Authorization Violation'` and is closed;
- the others keep their connection; their permissions are the new ones, and a subscription
  those no longer allow is removed with `-ERR 'Permissions Violation for Subscription to
  "<subject>" (sid "<sid>")'`; in an account whose stream imports changed, subscriptions
  listen in the exporting accounts again by the new imports.
bcrypt checks run in threads, one per distinct (hash, password) pair, so many clients of one
user cost one check; the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import const
from .auth import Authenticator, ClientPermissions, Verdict, bcrypt_matches
from .protocol import wire

if TYPE_CHECKING:
    from .accounts import Account
    from .client import ClientConnection
    from .core import ServerCore
    from .options import Options, Permissions


async def reload_authorization(srv: ServerCore, new: Options, accounts: list[Account]) -> None:
    """`new`: the options being applied; `accounts`: the accounts built from them."""
    old_auth = srv.auth
    changed_imports = update_accounts(srv, accounts)
    srv.auth = Authenticator(new)
    srv.build_info()
    clients = [c for c in srv.clients.values() if c.connect_received and not c.closed and not c._auth_pending]
    keep = []
    for c in clients:
        if _moved(srv, c):
            c.close_connection("Client Closed")
        else:
            keep.append(c)
    pending: list[tuple[ClientConnection, Any, Verdict]] = []
    for c in keep:
        v = _recheck(c, old_auth)
        if v.bcrypt is not None:
            pending.append((c, c.ident, v))
        else:
            _settle(srv, c, v, changed_imports)
    _recheck_routes(srv)
    srv.flush_dirty()
    if pending:
        results = await _bcrypt_checks(srv, {v.bcrypt for _, _, v in pending if v.bcrypt is not None})
        for c, ident, v in pending:
            if c.closed or c.ident is not ident:
                continue  # gone, or authenticated again by a new CONNECT meanwhile
            assert v.bcrypt is not None
            v.ok, v.bcrypt = results[v.bcrypt], None
            _settle(srv, c, v, changed_imports)
        srv.flush_dirty()
    # Cached matches hold delivery plans made under the old permissions.
    for acc in srv.accounts.values():
        acc.sublist.cache.clear()


def _moved(srv: ServerCore, c: ClientConnection) -> bool:
    """nats-server's clientHasMovedToDifferentAccount: the user is gone, or in another account."""
    ident = c.ident
    auth = srv.auth
    if ident.nkey:
        u = auth.nkeys.get(ident.nkey)
    elif ident.user:
        u = auth.users.get(ident.user)
    else:
        return False
    if u is None:
        # nats-server closes these also when the new configuration has no users list at all
        # (a single user/password, a token, no authorization), which closed every client of
        # a single user on every reload; those are authenticated again instead.
        return bool(auth.users or auth.nkeys)
    return (u.account or const.GLOBAL_ACCOUNT) != c.account.name


def _recheck(c: ClientConnection, old_auth: Authenticator) -> Verdict:
    co = dict(c.co)
    ident = c.ident
    no_auth = old_auth.no_auth_user
    if no_auth and not (co.get("user") or co.get("pass") or co.get("auth_token") or co.get("nkey")):
        # It became the no_auth_user at CONNECT: nats-server filled in that user's name and
        # password then, and checks those now.
        if ident.nkey == no_auth:
            co["nkey"] = no_auth
        elif ident.user == no_auth:
            u = old_auth.users.get(no_auth)
            co["user"] = no_auth
            if u is not None:
                co["pass"] = u.password
    return c.authenticate(co)


async def _bcrypt_checks(srv: ServerCore, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    loop = srv.loop
    keys = list(pairs)
    futs = [loop.run_in_executor(None, bcrypt_matches, h, given) for h, given in keys]
    done = await asyncio.gather(*futs, return_exceptions=True)
    return {k: r is True for k, r in zip(keys, done, strict=True)}


def _settle(srv: ServerCore, c: ClientConnection, v: Verdict, changed_imports: set[str]) -> None:
    if c.closed:
        return
    if not v.ok:
        if v.debug:
            c.debug(v.debug)
        c._auth_violation(c.ident)
        return
    acc = c._user_account(v.user)
    if acc is not c.account:
        c.close_connection("Client Closed")  # as a moved client: it comes back into acc
        return
    old = c.perms
    c._set_perms(v.user, acc)
    if old is not None and old.replies is not None and c.perms is not None and c.perms.replies is not None:
        # Replies it may still send (allow_responses) outlive the reload, as in nats-server
        # (whose reply map belongs to the client, not to its permissions).
        c.perms.replies = old.replies
    c._choose_pub_handler()
    _check_subscriptions(srv, c, acc.name in changed_imports)


def _check_subscriptions(srv: ServerCore, c: ClientConnection, imports_changed: bool) -> None:
    """nats-server's processSubsOnConfigReload."""
    from .client import _q

    perms = c.perms
    removed = []
    for sub in list(c.subs.values()):
        if perms is not None:
            ok = perms.can_subscribe(sub.subject, None)
            if not ok and sub.queue is not None:
                ok = perms.can_subscribe(sub.subject, sub.queue)
            if not ok:
                removed.append(sub)
                continue
        if imports_changed:
            old = c.shadows.pop(sub, [])
            c._add_shadows(sub)
            for exporter, shadow in old:
                shadow.closed = True
                exporter.sublist.remove(shadow)
                srv.local_interest(exporter, shadow, -1)
    # The delivery-time deny filter is loaded again by the checks above, if it is needed.
    c.perm_filter = perms if perms is not None and perms.filters_delivery else None
    who = c.ident.describe()
    for sub in removed:
        c.remove_sub(sub)
        s, sid = _q(sub.subject), _q(sub.sid)
        c.send_err(f"Permissions Violation for Subscription to {s} (sid {sid})")
        srv.log.notice(f"Removed sub {s} (sid {sid}) for {who} - not authorized")


def _recheck_routes(srv: ServerCore) -> None:
    """Routes the peers dialled are checked against the cluster authorization (those we
    dialled carry our credentials, not theirs)."""
    cl = srv.cluster
    if cl is None:
        return
    for r in list(cl.conns):
        if r.did_solicit or r.closed or r.connect_opts is None:
            continue
        if not cl.check_auth(r.connect_opts, r):
            user = r.connect_opts.get("user")
            r.error(f'authentication error - User "{user}"' if user else "authentication error")
            r.send_err(wire.E_AUTH_VIOLATION)
            r.outcome = "auth"  # not dialled back
            r.close_connection("Authentication Failure")


# -- accounts -----------------------------------------------------------------------------------


def _imports_key(acc: Account) -> list[tuple[str, str, str]]:
    return sorted((im.acc.name, im.from_, im.to) for im in acc.stream_imports)


def update_accounts(srv: ServerCore, fresh: list[Account]) -> set[str]:
    """Bring the server's accounts to the configured ones (nats-server configureAccounts with
    reloading): an account that stays keeps its object (clients, routes and indexes hold it)
    and takes the new exports, imports and default permissions; a new one is registered; one
    no longer configured is dropped (its clients are closed as moved). Returns the names of
    the accounts whose stream imports changed."""
    configured = {a.name for a in fresh}
    keep = (const.GLOBAL_ACCOUNT, srv.system_account.name if srv.system_account is not None else "")
    for name, acc in list(srv.accounts.items()):
        if name in configured or name in keep:
            continue
        del srv.accounts[name]
        srv.accounts_b.pop(acc.name_b, None)
        if acc.internal is not None:
            acc.internal.close()
    changed: set[str] = set()
    live: list[Account] = []
    for f in fresh:
        t = srv.accounts.get(f.name)
        if t is None:
            srv.register_account(f)
            live.append(f)
            continue
        if _imports_key(t) != _imports_key(f):
            changed.add(t.name)
        old_services = set(t.service_imports)
        if t.internal is not None and old_services:
            for sub in list(t.internal.subs.values()):
                if sub.subject.decode() in old_services:
                    t.internal.remove_sub(sub)
        t.stream_exports = f.stream_exports
        t.service_exports = f.service_exports
        t.stream_imports = f.stream_imports
        t.service_imports = f.service_imports
        t.default_permissions = f.default_permissions
        live.append(t)
    # Imports point at the accounts the server has (not the ones just built).
    for t in live:
        for im in t.stream_imports:
            im.acc = srv.accounts.get(im.acc.name, im.acc)
        for si in t.service_imports.values():
            si.acc = srv.accounts.get(si.acc.name, si.acc)
    for t in live:
        if t.server is None:
            t.start(srv)
        else:
            for si in t.service_imports.values():
                t._subscribe_service_import(si)
    if srv.sysacc is not None:
        # The system services every account imports (the configured imports replaced them).
        srv.sysacc.setup_imports()
    if srv.cluster is not None:
        for r in srv.cluster.connections():
            r._last_acc_name, r._last_acc = b"", None  # it may be an account that went
    # A client left in an account that went is closed as moved.
    for c in list(srv.clients.values()):
        if c.account is not srv.accounts.get(c.account.name) and not c.closed:
            c.close_connection("Client Closed")
    return changed


# -- routes -------------------------------------------------------------------------------------


def reload_cluster_permissions(srv: ServerCore, old_perms: Permissions | None) -> None:
    """nats-server's reloadClusterPermissions: the routes get our new INFO (import/export),
    then RS+ for interest we may now send and RS- for interest we may no longer send; interest
    routes sent that we may no longer export to them is dropped."""
    cl = srv.cluster
    assert cl is not None
    perms = cl.opts.permissions
    cl._perms = ClientPermissions(perms) if perms is not None else None
    plain: Counter[tuple[bytes, bytes]] = Counter()
    queues: Counter[tuple[bytes, bytes, bytes]] = Counter()
    for acc in srv.accounts.values():
        for sub in acc.sublist.all():
            if sub.is_route or sub.closed:
                continue
            if sub.client.internal and not sub.client.forwards(sub):
                continue
            if not cl.can_import(sub.subject):
                continue
            if sub.queue is None:
                plain[(acc.name_b, sub.subject)] += 1
            else:
                queues[(acc.name_b, sub.subject, sub.queue)] += 1
    buf = [wire.info(cl.route_info())]
    buf.extend(wire.rs_plus(a, s) for a, s in plain if (a, s) not in cl._plain)
    buf.extend(wire.rs_plus(a, s, q, n) for (a, s, q), n in queues.items() if (a, s, q) not in cl._queues)
    buf.extend(wire.rs_minus(a, s) for a, s in cl._plain if (a, s) not in plain)
    buf.extend(wire.rs_minus(a, s, q) for a, s, q in cl._queues if (a, s, q) not in queues)
    cl._plain, cl._queues = dict(plain), dict(queues)
    data = b"".join(buf)
    for r in cl.routes.values():
        r.enqueue(data)
    for r in cl.connections():
        for key, sub in list(r.rsubs.items()):
            if cl.can_export(sub.subject):
                continue
            del r.rsubs[key]
            sub.closed = True
            held = srv.accounts_b.get(key[0])
            if r.live and held is not None:
                held.sublist.remove(sub)
    srv.flush_dirty()


def recheck_pinned_certs(srv: ServerCore, old: Options, new: Options) -> None:
    """nats-server's recheckPinnedCerts: routes whose certificate is not in a changed
    cluster pinned_certs are closed. (nats-server compares clients with the previous set,
    so no client is ever closed by this; the same here: new handshakes use the new set.)"""
    from . import certs

    cl = srv.cluster
    if cl is None:
        return
    a = old.cluster.tls.pinned_certs if old.cluster.tls is not None else None
    b = new.cluster.tls.pinned_certs if new.cluster.tls is not None else None
    if a == b or b is None:
        return
    gone = []
    for r in cl.routes.values():
        der = r.peer_cert_der() if hasattr(r, "peer_cert_der") else None
        if not der or certs.spki_sha256(der) not in b:
            gone.append(r)
    if gone:
        srv.log.notice(f"Disconnect {len(gone)} clients due to pinned certs reload")
        for r in gone:
            r.outcome = "pinned"
            r.close_connection("TLS Handshake Failure")
        srv.flush_dirty()
