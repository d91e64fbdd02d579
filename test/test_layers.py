"""The package's layering: every module imports only from its own layer or the ones below it, and
no module imports another in a circle (module-level and function-level imports alike, read with
ast).

The layers, bottom up, are the diagram of docs/architecture.md. A new module must be given a layer
here; that is the point: deciding where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = [pytest.mark.quick]

PACKAGE = Path(__file__).resolve().parents[1] / "hecsb_ros"

# : (layer name, module prefixes), bottom up. A module may import from lower layers and from its
# own.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "hecsb_ros.core.payload",
            "hecsb_ros.core.store",
            "hecsb_ros.core.grid",
            "hecsb_ros.core.measurement",
            "hecsb_ros.core.datasets",
            "hecsb_ros.core.link",
            "hecsb_ros.core.stats",
            "hecsb_ros.core.results",
            "hecsb_ros.core.sources",
            "hecsb_ros.core.imageformats",
            "hecsb_ros.core.ratecontrol",
        ),
    ),
    ("entropy coding", ("hecsb_ros.core.entropy",)),
    ("teachers", ("hecsb_ros.core.teachers", "hecsb_ros.core.preprocess")),
    ("learned models", ("hecsb_ros.core.learned",)),
    ("network runtimes", ("hecsb_ros.core.onnx_export", "hecsb_ros.core.onnx_runtime")),
    ("codecs", ("hecsb_ros.core.codecs",)),
    (
        "training and benchmarks",
        ("hecsb_ros.core.training", "hecsb_ros.core.bench", "hecsb_ros.core.cs"),
    ),
    ("node description", ("hecsb_ros.params", "hecsb_ros.graph")),
    (
        "node toolkit",
        (
            "hecsb_ros.nodes.qos",
            "hecsb_ros.nodes.parameters",
            "hecsb_ros.nodes.diagnostics",
            "hecsb_ros.nodes.worker",
            "hecsb_ros.nodes.lifecycle",
            "hecsb_ros.nodes.entry",
            "hecsb_ros.nodes.conversions",
        ),
    ),
    (
        "nodes",
        (
            "hecsb_ros.nodes.edge",
            "hecsb_ros.nodes.server",
            "hecsb_ros.nodes.camera_source",
            "hecsb_ros.nodes.link_emulator",
        ),
    ),
    ("process runner", ("hecsb_ros.monitor", "hecsb_ros.runner", "hecsb_ros.latent_player")),
    ("reliability tooling", ("hecsb_ros.reliability",)),
    ("commands", ("hecsb_ros.cli",)),
)
#: Packages whose ``__init__`` only documents (may be imported by anything, import nothing).
PACKAGES = ("hecsb_ros", "hecsb_ros.core", "hecsb_ros.nodes", "hecsb_ros.cli")
# : Imports the layer order allows but the design does not: tools drive nodes as processes :
# (through the runner), never by importing node classes; the runner knows nodes only by module
# name.
NODES = dict(LAYERS)["nodes"]
FORBIDDEN: tuple[tuple[str, str], ...] = (
    *(("hecsb_ros.reliability", node) for node in NODES),
    *(("hecsb_ros.runner", node) for node in NODES),
    *(("hecsb_ros.monitor", node) for node in NODES),
    *(("hecsb_ros.latent_player", node) for node in NODES),
)


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports (anywhere in the file)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m != name}


def layer_of(name: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise KeyError(name)


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_every_module_has_a_layer():
    missing = [
        m for m in modules() if m not in PACKAGES and not any(_within(m, p) for _, p in LAYERS)
    ]
    assert not missing, f"give these modules a layer in test/test_layers.py: {missing}"


def test_no_module_imports_from_a_higher_layer():
    known = modules()
    wrong = []
    for name, path in known.items():
        if name in PACKAGES:
            assert not imports_of(name, path, known), f"{name}/__init__.py should only document"
            continue
        for dep in imports_of(name, path, known):
            if dep in PACKAGES:
                continue
            if layer_of(dep) > layer_of(name):
                wrong.append(
                    f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} "
                    f"({LAYERS[layer_of(dep)][0]})"
                )
            wrong += [
                f"{name} imports {dep}"
                for src, dst in FORBIDDEN
                if _within(name, src) and _within(dep, dst)
            ]
    assert not wrong, "\n".join(sorted(wrong))


def test_there_is_no_import_circle():
    known = modules()
    graph = {m: imports_of(m, p, known) for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"modules importing each other in a circle: {circles}"


@pytest.mark.parametrize(
    "bad",
    [
        "hecsb_ros.core.store -> hecsb_ros.core.codecs.base",
        "hecsb_ros.reliability.fuzz -> hecsb_ros.nodes.edge",
    ],
)
def test_the_check_catches_a_wrong_import(bad, monkeypatch):
    """The rules above would fail for an import that breaks them (the test can fail)."""
    src, dst = bad.split(" -> ")
    real = imports_of
    monkeypatch.setitem(
        globals(), "imports_of", lambda n, p, k: real(n, p, k) | ({dst} if n == src else set())
    )
    with pytest.raises(AssertionError, match=dst.replace(".", r"\.")):
        test_no_module_imports_from_a_higher_layer()
