"""JetStream's API on a server that has no JetStream but is part of a cluster that has it
(nats-server's "mixed mode"): the server's accounts import `$JS.API.>` from the system account,
so their requests travel over the routes in the system account, to the JetStream servers that
subscribe there, carrying the requesting account (Nats-Request-Info) as if it were served here.

Which accounts, as nats-server decides: every account configured with `jetstream` limits; and
when the server has only the global and the system account, the global one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import const

if TYPE_CHECKING:
    from ..core import ServerCore

JS_ALL_API = "$JS.API.>"


def proxy_accounts(server: ServerCore) -> None:
    """Set up the imports (called at start when JetStream is off and a cluster is configured)."""
    sysacc = server.system_account
    if sysacc is None:
        return
    with_js = {a.name for a in server.opts.accounts if a.jetstream is not None}
    names = set(server.accounts)
    if names == {sysacc.name, const.GLOBAL_ACCOUNT}:
        with_js.add(const.GLOBAL_ACCOUNT)
    for name in sorted(with_js):
        acc = server.accounts.get(name)
        if acc is None or acc.is_system:
            continue
        if JS_ALL_API not in sysacc.service_exports:
            sysacc.add_service_export(JS_ALL_API)
        if JS_ALL_API not in acc.service_imports:
            acc.add_service_import(sysacc, JS_ALL_API, JS_ALL_API, share=True)
