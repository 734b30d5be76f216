"""The package layout's rules, read from the source (docs/architecture.md states them):
imports point one way and form no cycle, the HTTP face stays thin, InfluxQL is built in one
module, modules stay short or say why, and tests share code only through tests/support."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bridge", "api", "devicedata")
LONG_MODULE = 300
LONG_REASON = "Over 300 lines:"  # what a long module's docstring must say, and why

# Lower layers never import higher ones; two packages of one layer never import each other.
# The base modules (rank 0) form one group: they may import each other.
LAYERS: dict[str, float] = {
    "bridge.errors": 0, "bridge.settings": 0, "bridge.logs": 0, "bridge.metrics": 0,
    "bridge.keyfile": 0, "bridge.limits": 0,
    "bridge.model": 1,
    "bridge.inspector": 1.5,
    # The interface the API holds its inspector connection by: it names the registry.
    "bridge.inspector.link": 2.5,
    # The MQTT codec is pure (bytes in, packets out): the broker's access-rule commands
    # (bridge.registry) use it as well as the bridge process.
    "bridge.mqtt.wire": 1,
    # So is the TLS client context (settings in, ssl.SSLContext out): the broker's access
    # commands connect the way the bridge does.
    "bridge.mqtt.tls": 1,
    "bridge.influx": 2, "bridge.registry": 2,
    "bridge.write": 3, "bridge.readcache": 3,
    "bridge.service": 4, "bridge.pipeline": 4.5,
    "bridge.mqtt": 5, "api": 5,
    "devicedata": 6,
}
API_NEVER_IMPORTS = ("bridge.influx", "bridge.write", "bridge.readcache")
INFLUXQL_MODULE = "bridge.influx.influxql"
# The start of an InfluxQL statement inside a string literal.
_INFLUXQL = re.compile(r"^\s*(SELECT|DELETE|SHOW|CREATE|DROP|ALTER|GRANT|REVOKE)\s+[\w\"*(]")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Our modules ``path`` imports, anywhere in it (function-level imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` imports the module; other names, the package.
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                out.add(submodule if submodule in known else node.module)
    out &= known
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def layer(module: str) -> tuple[str, float]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            rank = LAYERS[prefix]
            return ("base" if rank == 0 else prefix), rank
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS and to "
                         "the module map in docs/architecture.md")


def test_every_module_has_a_layer() -> None:
    for module in modules():
        if module not in ("bridge",):
            layer(module)


def test_imports_point_down() -> None:
    wrong = []
    for module, targets in graph().items():
        if module == "bridge":
            continue
        home, rank = layer(module)
        for target in targets:
            if target == "bridge":
                continue
            there, target_rank = layer(target)
            if there != home and target_rank >= rank:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_api_talks_only_to_the_service_and_registry() -> None:
    wrong = [f"{module} -> {target}" for module, targets in graph().items()
             if module == "api" or module.startswith("api.")
             for target in targets if target.startswith(API_NEVER_IMPORTS)]
    assert not wrong, wrong


def test_influxql_is_built_in_one_module() -> None:
    found = modules()
    assert INFLUXQL_MODULE in found
    elsewhere = []
    for module, path in found.items():
        if module == INFLUXQL_MODULE or module.startswith("bridge.registry"):
            continue  # the registry's statements are SQL, and belong there
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef
                                    | ast.ClassDef)
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values
                               if isinstance(v, ast.Constant) and isinstance(v.value, str))
            else:
                continue
            if _INFLUXQL.match(text):
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]!r}")
    assert not elsewhere, "InfluxQL outside bridge/influx/influxql.py:\n" + "\n".join(elsewhere)


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in modules().values():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > LONG_MODULE and LONG_REASON not in docstring:
            unexplained.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not unexplained, (f"modules over {LONG_MODULE} lines without '{LONG_REASON} ...' "
                             f"in their docstring: {unexplained}")


def test_tests_share_code_only_through_support() -> None:
    tests = ROOT / "tests"
    test_modules = {p.stem for p in tests.rglob("test_*.py")}
    wrong = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[-1] in test_modules or name.split(".")[0] in test_modules:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    first_party = ruff["isort"]["known-first-party"]
    assert not [n for n in first_party if n.startswith("test")], first_party


def test_tests_mirror_the_code() -> None:
    """Each test directory under unit/ and integration/ is named after a package."""
    packages = {*PACKAGES, *(p.name for p in (ROOT / "bridge").iterdir() if p.is_dir()
                             and (p / "__init__.py").exists())}
    for kind in ("unit", "integration"):
        for directory in (ROOT / "tests" / kind).iterdir():
            if directory.is_dir() and directory.name != "__pycache__":
                assert directory.name in packages, f"tests/{kind}/{directory.name}"
