"""Imports run one way (docs/DESIGN.md, "Layers"): every import of the package, including
those under `if TYPE_CHECKING:` and inside functions, goes to a module of the same layer or a
lower one, and no modules import each other in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "pynats_server"

# From the top (1) to the bottom (8), by module name (a package's modules by prefix).
LAYERS: dict[int, tuple[str, ...]] = {
    1: ("__main__", "cli", "testing", "pytest_plugin", "natscli", "top", "demo", "walkthrough",
        "faults", "faultproxy", "__init__"),
    2: ("server", "reload", "reload_auth"),
    3: ("monitor", "monitor_http", "metrics", "clusterview", "sysacc", "operator",
        "resolver_service", "jetstream"),
    4: ("client", "tlsconn", "wsconn", "wrapped", "cluster", "route", "dialer", "leafnodes",
        "leafnode", "leaftls"),
    5: ("config", "optcheck"),
    6: ("core", "acceptor", "connection", "delivery", "leafdelivery", "subdeliver", "accounts", "internal",
        "auth", "leafperms", "jwt_client", "resolver", "certs", "log"),
    7: ("confread", "leaf_config", "websocket_config", "operator_config", "tlsctx", "conf",
        "goflags"),
    8: ("protocol", "sublist", "websocket", "jwt", "jwtjson", "nkeys_util", "gotime", "ids",
        "const", "options", "netutil", "jetstream.store", "jetstream.errors"),
}  # fmt: skip
SANS_IO = ("protocol", "sublist", "websocket", "jwt", "jwtjson", "gotime", "jetstream.store")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(PKG).with_suffix("").parts)
        out[name.removesuffix(".__init__") or "__init__"] = p
    return out


def _layer(mod: str) -> int:
    best, depth = 0, -1
    for n, names in LAYERS.items():
        for name in names:
            if (mod == name or mod.startswith(name + ".")) and name.count(".") > depth:
                best, depth = n, name.count(".")
    assert best, f"pynats_server.{mod} has no layer: add it to LAYERS here and to docs/DESIGN.md"
    return best


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, however (top, TYPE_CHECKING, local)."""
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        pkg = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".")
        if mod == "__init__":
            pkg = []
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg[: len(pkg) - node.level + 1]
                elif (node.module or "").startswith("pynats_server"):
                    base = []
                    node = ast.ImportFrom(node.module.removeprefix("pynats_server").lstrip("."),
                                          node.names, 1)
                else:
                    continue
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}" if target else alias.name
                    if full in mods:
                        deps.add(full)
                    elif target in mods:
                        deps.add(target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("pynats_server."):
                        name = alias.name.removeprefix("pynats_server.")
                        if name in mods:
                            deps.add(name)
        deps.discard(mod)
        graph[mod] = deps
    return graph


def test_every_import_runs_down() -> None:
    mods = _modules()
    graph = _imports(mods)
    up = sorted(
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, deps in graph.items()
        for b in deps
        if _layer(b) < _layer(a)
    )
    assert not up, "imports that run back up:\n" + "\n".join(up)


def test_no_import_loops() -> None:
    graph = _imports(_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not loops, "modules that import each other in a loop:\n" + "\n".join(map(str, loops))


def test_sans_io_modules_do_not_import_asyncio() -> None:
    bad = []
    for mod, path in _modules().items():
        if not any(mod == s or mod.startswith(s + ".") for s in SANS_IO):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "asyncio" or n.startswith("asyncio.") for n in names):
                bad.append(mod)
    assert not bad, f"sans-IO modules importing asyncio: {sorted(set(bad))}"
