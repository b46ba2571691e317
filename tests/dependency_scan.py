"""Which third-party distributions a body of code imports, and which ones a distribution declares: an AST scan of
every import statement (module level and inside functions) mapped to the installed distributions that provide the
imported modules, and the requirements of pyproject.toml files and of requirements.lock."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"waldinger_assets", "resources", "sensors", "infra_pulumi", "waldinger_runtime", "tests", "benchmarks"}


@dataclass(frozen=True)
class ImportSite:
    module: str  # as written: "azure.identity"
    path: str  # relative to the repository root
    line: int
    module_level: bool  # False inside a function (or class) body

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.module})"


def import_sites(*folders: str, exclude: tuple[str, ...] = ()) -> list[ImportSite]:
    """Every absolute import of a module outside the standard library and the project, under the folders."""
    sites = []
    for folder in folders:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if relative.startswith(exclude):
                continue
            for node, module_level in _imports(ast.parse(path.read_text(), filename=relative), module_level=True):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    root = name.split(".")[0]
                    if root in sys.stdlib_module_names or root in FIRST_PARTY:
                        continue
                    sites.append(ImportSite(name, relative, node.lineno, module_level))
    return sites


def _imports(node: ast.AST, module_level: bool):
    """(import node, whether it runs when the module is imported): anything inside a function body runs later."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, module_level
        inside_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _imports(child, module_level and not inside_function)


@cache
def _providers() -> dict[str, frozenset[str]]:
    """Module name (its first one, two and three components) -> the installed distributions whose files provide it."""
    providers: dict[str, set[str]] = defaultdict(set)
    for distribution in metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        for file in distribution.files or ():
            parts = file.parts
            if not parts or parts[0] in {"..", "bin"} or parts[0].endswith((".dist-info", ".egg-info", ".pth")):
                continue
            if file.suffix not in {".py", ".so", ".pyd"} and len(parts) == 1:
                continue
            module = [part.split(".")[0] for part in parts[:-1]] + [parts[-1].split(".")[0]]
            for depth in range(1, min(len(module), 3) + 1):
                providers[".".join(module[:depth])].add(name)
    return {module: frozenset(names) for module, names in providers.items()}


def distribution_of(module: str) -> str:
    """The distribution that provides an imported module (namespace packages such as `azure` and `snowflake` by
    their deeper components); a module no installed distribution provides (vllm) is named after itself."""
    parts = module.split(".")
    providers = _providers()
    for key in (".".join(parts[:depth]) for depth in range(min(len(parts), 3), 0, -1)):
        if len(providers.get(key, ())) == 1:
            (name,) = providers[key]
            return name
    return canonicalize_name(parts[0])


def imported_distributions(sites: list[ImportSite]) -> dict[str, list[ImportSite]]:
    found: dict[str, list[ImportSite]] = defaultdict(list)
    for site in sites:
        found[distribution_of(site.module)].append(site)
    return dict(found)


@dataclass(frozen=True)
class Declared:
    dependencies: dict[str, Requirement]
    extras: dict[str, dict[str, Requirement]]

    def names(self, *extras: str, base: bool = True) -> set[str]:
        chosen = set(self.dependencies) if base else set()
        for extra in extras:
            chosen |= set(self.extras[extra])
        return chosen


def _by_name(requirements: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in requirements]
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def declared(pyproject: Path) -> Declared:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return Declared(_by_name(project.get("dependencies", [])), {k: _by_name(v) for k, v in extras.items()})


LOCK_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def locked_versions(lock: Path = REPO_ROOT / "requirements.lock") -> dict[str, str]:
    """{distribution: version} of a pip requirements file with `name==version` pins (hash lines and comments
    skipped)."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = LOCK_PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins
