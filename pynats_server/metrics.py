"""`/metrics`: the monitoring data in Prometheus' text format, under the names
prometheus-nats-exporter publishes (`gnatsd_varz_in_msgs`, `gnatsd_connz_num_connections`,
`gnatsd_routez_num_routes`, `gnatsd_subsz_num_subscriptions`, `gnatsd_healthz_status` ...),
so that dashboards made for the exporter work against a pynats-server without it.

The exporter's rules, as its collectors apply them to nats-server's JSON:
- varz, routez, subsz: every number becomes a gauge named after its path in the JSON
  (nested objects joined with `_`, lists left out); the strings `server_id`, `server_name`,
  `version`, `name` ... become a gauge of 1 with the string as the `value` label, and the
  times `start`, `config_load_time` a gauge of milliseconds since the epoch; booleans are
  left out;
- connz: the page's size (num_connections, total, offset, limit) and the connections'
  pending bytes, subscriptions, and in/out messages and bytes summed;
- healthz: `status` (0 ok, 1 not) and `status_value` (1 ok, with the status as a label).
Every sample has the label `server_id`: the server's id (the exporter's
`-use_internal_server_id`; by default it puts the URL it polls there).

Sans-IO: text from `Monitoring`'s dictionaries.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .monitor import Monitoring

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SYSTEM = "gnatsd"
# The exporter's lists (collector.go objectToMetrics).
_SKIP = {"leaf", "trusted_operators_claim", "cluster_tls_timeout", "cluster_cluster_port",
         "cluster_auth_timeout", "gateway_port", "gateway_auth_timeout", "gateway_tls_timeout",
         "gateway_connect_retries"}  # fmt: skip
_LABEL_KEYS = {"server_id", "server_name", "version", "domain", "leader", "name", "start", "config_load_time"}
_BAD_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _fq(path: list[str]) -> str:
    """The exporter's fqName: the path joined with `_`, `/` as `_`, no `__`, no edge `_`."""
    fqn = "_".join(path).replace("/", "_").strip("_")
    while "__" in fqn:
        fqn = fqn.replace("__", "_")
    return _BAD_NAME.sub("_", fqn)


def _millis(text: str) -> float:
    t = text.replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", t)
    if frac:  # Python reads at most microseconds
        t = t.replace(frac.group(0), "." + frac.group(1)[:6].ljust(6, "0"))
    return float(int(dt.datetime.fromisoformat(t).timestamp() * 1000))


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return str(v)
    if v != v:
        return "NaN"
    return repr(float(v)) if not float(v).is_integer() else str(int(v)) if abs(v) < 1e15 else repr(float(v))


class _Out:
    def __init__(self, server_id: str) -> None:
        self.sid = _esc(server_id)
        self.lines: list[str] = []
        self.seen: set[str] = set()

    def family(self, name: str, help_: str, kind: str) -> bool:
        if name in self.seen:
            return False
        self.seen.add(name)
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        return True

    def sample(self, name: str, v: float, **labels: str) -> None:
        lab = f'server_id="{self.sid}"' + "".join(f',{k}="{_esc(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{lab}}} {_num(v)}")


def _generic(out: _Out, endpoint: str, obj: dict[str, Any], prefix: list[str]) -> None:
    """The exporter's NATSCollector: numbers, label strings and times, recursively."""
    for k, v in obj.items():
        path = [*prefix, k]
        fqn = _fq(path)
        if fqn in _SKIP:
            continue
        name = f"{SYSTEM}_{endpoint}_{fqn}"
        if isinstance(v, bool) or v is None or isinstance(v, list):
            continue
        if isinstance(v, (int, float)):
            if out.family(name, fqn, "gauge"):
                out.sample(name, v)
        elif isinstance(v, str):
            if k not in _LABEL_KEYS:
                continue
            if _TIME.match(v):
                if out.family(name, fqn, "gauge"):
                    out.sample(name, _millis(v))
            elif out.family(name, fqn, "gauge"):
                out.sample(name, 1, value=v)
        elif isinstance(v, dict):
            _generic(out, endpoint, v, path)


def _connz(out: _Out, connz: dict[str, Any]) -> None:
    conns = connz.get("connections") or []
    totals = {k: sum(c.get(k, 0) for c in conns) for k in
              ("pending_bytes", "subscriptions", "in_bytes", "out_bytes", "in_msgs", "out_msgs")}  # fmt: skip
    for key in ("num_connections", "total", "offset", "limit"):
        name = f"{SYSTEM}_connz_{key}"
        out.family(name, key, "gauge")
        out.sample(name, connz.get(key, 0))
    for key in ("pending_bytes", "subscriptions"):
        name = f"{SYSTEM}_connz_{key}"
        out.family(name, key, "gauge")
        out.sample(name, totals[key])
    for key in ("in_bytes", "out_bytes", "in_msgs", "out_msgs"):
        name = f"{SYSTEM}_connz_{key}"
        out.family(name, key, "counter")
        out.sample(name, totals[key])


def _healthz(out: _Out, hz: dict[str, Any]) -> None:
    ok = hz.get("status") == "ok"
    out.family(f"{SYSTEM}_healthz_status", "status", "gauge")
    out.sample(f"{SYSTEM}_healthz_status", 0 if ok else 1)
    out.family(f"{SYSTEM}_healthz_status_value", "status", "gauge")
    out.sample(f"{SYSTEM}_healthz_status_value", 1 if ok else 0, value=str(hz.get("status", "")))


def render(data: Monitoring) -> str:
    """The /metrics page of this server."""
    out = _Out(data.server.id)
    _generic(out, "varz", data.varz(), [])
    _connz(out, data.connz())
    _generic(out, "routez", data.routez(), [])
    _generic(out, "subsz", data.subsz(), [])
    _healthz(out, data.healthz())
    return "\n".join(out.lines) + "\n"
