"""The house keeps its shape: no folder imports upward, no import cycles, pure logic does no I/O.

Read from the source (AST), so a violation is caught whether or not the import ever runs;
imports under `if TYPE_CHECKING:` count too — a type-only cycle is still a cycle for a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "evaluators", "gateway")

# Lowest first. A module may import modules of its own layer or a lower one, never a higher one.
# Modules not listed in a layer (e.g. `bot.demo_fixtures`, data only) are free of the rule.
LAYERS: list[tuple[str, ...]] = [
    # evaluators: pure, knows nothing of GitHub, Slack or the gateway
    (
        "evaluators.errors",
        "evaluators.bounded",
        "evaluators.report",
        "evaluators.escaping",
        "evaluators.wording",
        "evaluators.candidate",
    ),
    ("evaluators.metrics",),
    ("evaluators.policy",),
    ("evaluators.artifacts", "evaluators.statistics"),
    ("evaluators.judgement", "evaluators.drift_report", "evaluators.distributed"),
    ("evaluators.rendering",),
    ("evaluators.evaluate",),
    # the gateway serves models with the evaluators' safe loaders; it never imports the bot
    ("gateway",),
    # the bot
    ("bot.base",),
    ("bot.store",),
    ("bot.github",),
    ("bot.runtime",),
    ("bot.paging",),
    ("bot.promotion",),
    ("bot.rollout",),
    ("bot.monitoring",),
    ("bot.commands",),
    ("bot.slack",),
    ("bot.service",),
    ("bot.cli",),
]

# Loopback doubles stand beside the bot: they may use its low-level helpers only, and nothing
# but tests and the CLI may import them.
SANDBOX = "bot.sandbox"
SANDBOX_MAY_IMPORT = ("bot.base", SANDBOX)
SANDBOX_IMPORTED_BY = ("bot.cli", SANDBOX)

# Decision logic that must stay pure: no database, network, process or web framework.
PURE = (
    "bot.promotion.gate_decision",
    "bot.promotion.authorization",
    "bot.commands.parser",
    "bot.commands.table",
    "evaluators.metrics",
    "evaluators.statistics",
    "evaluators.judgement.verdict",
    "evaluators.judgement.shadow",
    "evaluators.judgement.canary",
    "evaluators.judgement.monitoring",
    "evaluators.drift_report",
    "bot.paging.events",
)
IO_MODULES = (
    "sqlalchemy",
    "httpx",
    "githubkit",
    "fastapi",
    "starlette",
    "uvicorn",
    "slack_sdk",
    "slack_bolt",
    "requests",
    "urllib.request",
    "socket",
    "subprocess",
    "multiprocessing",
    "bot.store",
    "bot.github.api",
    "bot.runtime",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imports_of(path: Path, known: set[str]) -> set[str]:
    """First-party and third-party modules a file imports, resolved to the deepest known module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            for alias in node.names:
                child = f"{parent}.{alias.name}"
                found.add(child if child in known else parent)
    return found


def graph() -> dict[str, set[str]]:
    files = list(first_party_files())
    known = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, known) for path in files}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if any(within(module, prefix) for prefix in layer):
            return index
    return None


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in edges.items():
        for target in targets:
            if within(target, SANDBOX) and not within(source, SANDBOX):
                if not any(within(source, p) for p in SANDBOX_IMPORTED_BY):
                    found.append(f"{source} imports the loopback double {target}")
                continue
            if within(source, SANDBOX):
                if target.split(".")[0] in PACKAGES and not any(
                    within(target, p) for p in SANDBOX_MAY_IMPORT
                ):
                    found.append(f"{source} (a loopback double) imports {target}")
                continue
            low, high = layer_of(target), layer_of(source)
            if low is not None and high is not None and low > high:
                found.append(f"{source} imports {target}, which sits above it")
    return sorted(found)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges or nxt == node:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


EDGES = graph()


def test_every_first_party_module_is_placed_in_a_layer_or_the_sandbox() -> None:
    unplaced = [
        m
        for m in EDGES
        if layer_of(m) is None
        and not within(m, SANDBOX)
        and m not in ("bot", "evaluators", "bot.demo_fixtures")
    ]
    assert unplaced == [], "add these to a layer in tests/test_import_direction.py: " + ", ".join(
        unplaced
    )


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = upward_imports(EDGES)
    assert not found, "\n".join(found)


def test_there_are_no_import_cycles() -> None:
    found = cycles(EDGES)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("evaluators", ("bot", "gateway")), ("gateway", ("bot",))],
    ids=["evaluators never import the bot or the gateway", "the gateway never imports the bot"],
)
def test_the_lower_packages_never_reach_into_the_bot(
    package: str, forbidden: tuple[str, ...]
) -> None:
    offending = sorted(
        f"{source} imports {target}"
        for source, targets in EDGES.items()
        if within(source, package)
        for target in targets
        if any(within(target, f) for f in forbidden)
    )
    assert not offending, "\n".join(offending)


def test_pure_decision_modules_do_no_io() -> None:
    offending = sorted(
        f"{source} imports {target}"
        for source, targets in EDGES.items()
        if any(within(source, p) for p in PURE)
        for target in targets
        if any(within(target, io) for io in IO_MODULES)
    )
    assert not offending, "\n".join(offending)


def test_the_rules_catch_an_upward_import_and_a_cycle() -> None:
    """The checks themselves work: a planted upward import and a planted cycle are reported."""
    planted = {k: set(v) for k, v in EDGES.items()}
    planted["bot.base.clock"].add("bot.promotion.gate_decision")
    planted["bot.promotion.gate_decision"].add("bot.base.clock")
    assert (
        "bot.base.clock imports bot.promotion.gate_decision, which sits above it"
        in upward_imports(planted)
    )
    assert ["bot.base.clock", "bot.promotion.gate_decision"] in cycles(planted)
