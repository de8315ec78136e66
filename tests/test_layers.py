"""vault's layers go one way, and no module imports itself back.

Every module under `vault/` is parsed (not imported) and every import it holds is collected,
the ones inside functions too. Each module belongs to one layer, by the longest module prefix
in LAYERS (so `vault.storage` covers a `vault/storage/` package and all its modules). A module
may import from its own layer or from any layer below it; never from a layer above. Inside a
layer of rooms (the views), one room does not import another. And the imports make no circle,
with one exception: a package's `__init__` importing its own modules (the blueprint packages
register their views that way, and those views import the blueprint back).

Run it to see the drawing (layers, their modules, and who imports whom):

    python tests/test_layers.py
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vault"

# Top to bottom: (layer, the module prefixes in it, whether its prefixes are rooms that must
# not import one another). A new module must find its place here, or the test says so.
LAYERS: list[tuple[str, tuple[str, ...], bool]] = [
    ("programs", ("vault.cli", "vault.serve", "vault.__main__"), False),
    ("app", ("vault",), False),  # the package itself: create_app
    ("views", ("vault.pages", "vault.api"), True),
    ("http", ("vault.web", "vault.extension"), False),
    ("rules", ("vault.service", "vault.accounts", "vault.passkeys", "vault.helpdesks",
               "vault.sso", "vault.notify", "vault.rotation", "vault.principal", "vault.audit"),
     False),
    ("storage and crypto", ("vault.storage", "vault.redis_client", "vault.crypto",
                            "vault.ratelimit"), False),
    ("ids, config, errors", ("vault.ids", "vault.config", "vault.cookies", "vault.errors",
                             "vault.names", "vault.logs", "vault.metrics", "vault.i18n",
                             "vault.httpclient", "vault.crypto.b64"), False),
]


def modules() -> dict[str, Path]:
    """{dotted name: file} of every module under vault/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The vault modules `module` imports, anywhere in its file."""
    package = module if _is_package(path) else module.rpartition(".")[0]

    def resolve(name: str) -> str | None:
        """The longest known module that `name` is or lies in."""
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vault":
                    target = resolve(alias.name)
                    if target:
                        yield target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "vault":
                continue
            for alias in node.names:
                # `from vault import ids` imports the module vault.ids; `from vault.web import
                # gate`, a name of vault.web.
                target = resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known \
                    else resolve(base)
                if target:
                    yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: set(_imported(m, p, known)) - {m} for m, p in known.items()}


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the prefix that placed it) by the longest matching prefix."""
    best: tuple[int, int, str] | None = None
    for index, (_, prefixes, _) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) \
                    and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index, prefix)
    if best is None:
        raise LookupError(f"{module} is in no layer: give it one in tests/test_layers.py LAYERS")
    return best[1], best[2]


def _registration(source: str, target: str, known: dict[str, Path]) -> bool:
    """A package's `__init__` importing one of its own modules (the allowed circle)."""
    return _is_package(known[source]) and target.startswith(source + ".")


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer, or from one room of a layer into another."""
    wrong = []
    for source, targets in sorted(edges.items()):
        here, room = layer_of(source)
        for target in sorted(targets):
            there, other = layer_of(target)
            if there < here:
                wrong.append(f"{source} ({LAYERS[here][0]}) imports {target} "
                             f"({LAYERS[there][0]}), a layer above it")
            elif there == here and LAYERS[here][2] and room != other:
                wrong.append(f"{source} imports {target}: {room} and {other} are separate rooms")
    return wrong


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), registrations left out."""
    known = modules()
    follow = {s: sorted(t for t in ts if not _registration(s, t, known)) for s, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in follow.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(follow):
        if node not in index:
            visit(node)
    return sorted(groups)


def drawing() -> str:
    edges = graph()
    lines = []
    for index, (name, _, rooms) in enumerate(LAYERS):
        members = sorted(m for m in edges if layer_of(m)[0] == index)
        lines.append(f"[{index}] {name}{' (rooms)' if rooms else ''}")
        for module in members:
            below = sorted(edges[module])
            lines.append(f"    {module} -> {', '.join(below) if below else '-'}")
    lines.append("")
    wrong, circles = upward(edges), cycles(edges)
    lines.append(f"upward or cross-room imports: {len(wrong)}")
    lines.extend(f"    {w}" for w in wrong)
    lines.append(f"import circles: {len(circles)}")
    lines.extend(f"    {' <-> '.join(c)}" for c in circles)
    touching = {m: store_touches(m) for m in edges
                if LAYERS[layer_of(m)[0]][0] in {"views", "http"} and m != "vault.extension"}
    touching = {m: lines for m, lines in touching.items() if lines}
    lines.append(f"views that touch the store: {len(touching)}")
    lines.extend(f"    {m}: lines {', '.join(map(str, at))}" for m, at in sorted(touching.items()))
    return "\n".join(lines)


# -- the checks -----------------------------------------------------------------------------------

def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)  # raises for a module no prefix places


def test_no_import_goes_up_a_layer_or_across_rooms() -> None:
    assert upward(graph()) == []


def test_no_import_circle() -> None:
    assert cycles(graph()) == []


def store_touches(module: str) -> list[int]:
    """Lines of `module` that reach for a `.store` (the app's, the service's, any)."""
    tree = ast.parse(modules()[module].read_text())
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr == "store")


def test_views_never_touch_the_store() -> None:
    """Pages, API views and the HTTP plumbing call the rules (service, accounts, helpdesks),
    which call the store."""
    views = [m for m in modules()
             if LAYERS[layer_of(m)[0]][0] in {"views", "http"} and m != "vault.extension"]
    assert "vault.api.webhooks" in views and "vault.pages.sso" in views
    assert {m: lines for m in views if (lines := store_touches(m))} == {}


def test_function_level_imports_are_seen() -> None:
    """The parser finds an import inside a function and resolves a relative one (a check that
    could not see them would pass on anything)."""
    known = {"vault": PACKAGE / "__init__.py", "vault.web": PACKAGE / "web.py",
             "vault.pages": PACKAGE / "pages" / "__init__.py"}
    found = set(_imported("vault", PACKAGE / "__init__.py", known))
    assert {"vault.web", "vault.pages"} <= found  # create_app imports them inside the function


def test_an_upward_import_and_a_circle_are_caught() -> None:
    edges = {"vault.ids": {"vault.service"}, "vault.service": {"vault.ids"}}
    assert upward(edges) == ["vault.ids (ids, config, errors) imports vault.service (rules), "
                             "a layer above it"]
    assert cycles(edges) == [["vault.ids", "vault.service"]]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(drawing())
