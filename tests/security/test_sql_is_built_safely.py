"""Every SQL statement the project runs is built safely, checked statically over its own code (waldinger_assets,
resources, sensors): the statement given to any `.execute(...)`/`.executemany(...)` is a constant, or an
f-string (or concatenation) whose holes are only

- the quoting helpers of waldinger_assets/snowflake_sql.py (quote_identifier, qualified_name, string_literal),
- numbers (int(...), len(...)) and constants,
- `"sep".join(...)` over such parts,
- names bound only to such parts (in the function, or as module constants, imported ones included), or loop
  variables over constant data,
- calls to the project's own functions whose every `return` passes the same rule (`create_table_sql()`),

so values can only travel as bind parameters. What the rule cannot prove but is safe for a stated reason is
listed in ALLOWED with that reason; an entry that no longer matches anything fails the test too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import REPO_ROOT

PACKAGES = ("waldinger_assets", "resources", "sensors")
EXECUTE_METHODS = {"execute", "executemany"}
QUOTING_MODULE = "resources.snowflake_sql"
QUOTING_HELPERS = {"quote_identifier", "qualified_name", "string_literal"}
NUMBER_FUNCTIONS = {"int", "len"}
SEQUENCE_FUNCTIONS = {"list", "tuple", "sorted"}

# (file, function) -> why its statement is safe although the rule cannot prove it.
ALLOWED = {
    ("waldinger_assets/schema_drift/metadata.py", "CountingCursor.execute"): (
        "forwards its caller's statement to the real cursor; every caller's `.execute(...)` is checked here"
    ),
    ("waldinger_assets/schema_drift/metadata.py", "show_all"): (
        "`show_statement` is a parameter; its one caller passes "
        "f'SHOW SCHEMAS IN DATABASE {quote_identifier(database)}', and the name it pages from is bound"
    ),
    ("waldinger_assets/schema_drift/metadata.py", "_object_rows"): (
        "`view` is a parameter, always one of the constant names in OBJECT_VIEWS"
    ),
    ("waldinger_assets/demo_warehouse/seed.py", "_run_statements"): (
        "runs create_table_sql/create_view_sql output: names through qualified_name/quote_identifier, comments "
        "through string_literal, types and defaults from the catalog's constant COLUMN_TYPES/DEFAULTS_BY_TYPE"
    ),
    ("resources/embedded_warehouse/server.py", "open_persistent_instance"): (
        "DuckDB statements on fakesnow's own catalog: fakesnow's constant database name and creation SQL, and "
        "the data directory's path as a DuckDB string literal (quotes doubled; DuckDB keeps backslashes, so "
        "Snowflake's string_literal would be wrong there)"
    ),
}


@dataclass
class Module:
    path: Path
    tree: ast.Module
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)  # "name" or "Class.method"
    constants: dict[str, list[ast.expr]] = field(default_factory=dict)  # module-level name -> values bound
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name) it imports

    @classmethod
    def parse(cls, path: Path, source: str | None = None) -> Module:
        module = cls(path, ast.parse(path.read_text() if source is None else source, str(path)))
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        module.functions[f"{node.name}.{item.name}"] = item
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        module.constants.setdefault(target.id, []).append(node.value)
        for node in ast.walk(module.tree):  # imports inside functions too: the project imports lazily
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (node.module, alias.name)
        return module


def _bindings(function: ast.FunctionDef) -> dict[str, list[tuple[str, ast.expr | None]]]:
    """name -> how it is bound in the function: ("value", expr), ("element", iterable) or ("parameter", None)."""
    bound: dict[str, list[tuple[str, ast.expr | None]]] = {}

    def bind(target: ast.expr, kind: str, value: ast.expr | None) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                bound.setdefault(name.id, []).append((kind, value))

    for node in ast.walk(function):  # nested functions included: they share its names here, conservatively
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                bound.setdefault(argument.arg, []).append(("parameter", None))
            for argument in (arguments.vararg, arguments.kwarg):
                if argument:
                    bound.setdefault(argument.arg, []).append(("parameter", None))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                bind(target, "value" if isinstance(target, ast.Name) else "element", node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
            bind(node.target, "value", node.value)
        elif isinstance(node, ast.For | ast.AsyncFor):
            bind(node.target, "element", node.iter)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            bind(node.optional_vars, "parameter", None)  # whatever a context manager yields: not provable
        elif isinstance(node, ast.NamedExpr):
            bind(node.target, "value", node.value)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.setdefault(node.name, []).append(("parameter", None))
    return bound


class Checker:
    """Decides whether an expression can only produce SQL built from constants and quoting helpers."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self.function_memo: dict[tuple[str, str], bool] = {}
        self.binding_memo: dict[int, dict] = {}

    # --- scopes -------------------------------------------------------------------------------------------
    def _scope_bindings(self, function: ast.FunctionDef | None) -> dict:
        if function is None:
            return {}
        if id(function) not in self.binding_memo:
            self.binding_memo[id(function)] = _bindings(function)
        return self.binding_memo[id(function)]

    def _module_name(self, dotted: str) -> str | None:
        return dotted if dotted in self.modules else None

    # --- the rule -----------------------------------------------------------------------------------------
    def safe(self, node: ast.expr, module: str, function: ast.FunctionDef | None, local: dict | None = None) -> bool:
        local = local or {}
        match node:
            case ast.Constant():
                return True
            case ast.JoinedStr(values=values):
                return all(
                    self.safe(part.value, module, function, local)
                    for part in values
                    if isinstance(part, ast.FormattedValue)
                )
            case ast.BinOp(left=left, right=right):
                return self.safe(left, module, function, local) and self.safe(right, module, function, local)
            case ast.IfExp(body=body, orelse=orelse):
                return self.safe(body, module, function, local) and self.safe(orelse, module, function, local)
            case ast.Tuple(elts=elements) | ast.List(elts=elements):
                return all(self.safe(element, module, function, local) for element in elements)
            case ast.Name(id=name):
                return self._safe_name(name, module, function, local)
            case ast.Call(func=callee, args=args):
                return self._safe_call(callee, args, module, function, local)
        return False

    def _safe_call(self, callee: ast.expr, args: list[ast.expr], module: str, function, local: dict) -> bool:
        name = callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else None
        if self._is_quoting_helper(callee, module) or (isinstance(callee, ast.Name) and name in NUMBER_FUNCTIONS):
            return True
        if (
            isinstance(callee, ast.Attribute)
            and name == "join"
            and isinstance(callee.value, ast.Constant)
            and len(args) == 1
        ):
            return self.elements_safe(args[0], module, function, local)
        if isinstance(callee, ast.Name) and name not in self._scope_bindings(function):
            target = self._resolve(name, module)
            if target and target[1] in self.modules[target[0]].functions:
                return self.function_returns_safe(*target)
        return False

    def _is_quoting_helper(self, callee: ast.expr, module: str) -> bool:
        """`quote_identifier(...)` etc. imported from resources.snowflake_sql, or `snowflake_sql.<helper>`."""
        imports = self.modules[module].imports
        if isinstance(callee, ast.Name) and callee.id in QUOTING_HELPERS:
            if module == QUOTING_MODULE:
                return True
            defined_here = callee.id in self.modules[module].functions  # a look-alike shadowing the import
            return not defined_here and imports.get(callee.id) == (QUOTING_MODULE, callee.id)
        if isinstance(callee, ast.Attribute) and callee.attr in QUOTING_HELPERS and isinstance(callee.value, ast.Name):
            return imports.get(callee.value.id) == tuple(QUOTING_MODULE.rsplit(".", 1))
        return False

    def _resolve(self, name: str, module: str) -> tuple[str, str] | None:
        """(module, name) where a module-level `name` of `module` is defined, following project imports."""
        here = self.modules[module]
        if name in here.functions or name in here.constants:
            return module, name
        if name in here.imports:
            source, original = here.imports[name]
            if self._module_name(source):
                return self._resolve(original, source)
        return None

    def _safe_name(self, name: str, module: str, function, local: dict) -> bool:
        if name in local:
            return local[name]
        bindings = self._scope_bindings(function).get(name)
        if bindings:
            return all(self._safe_binding(kind, value, module, function, local) for kind, value in bindings)
        target = self._resolve(name, module)
        if target is None or target[1] not in self.modules[target[0]].constants:
            return False
        return all(self.safe(value, target[0], None) for value in self.modules[target[0]].constants[target[1]])

    def _safe_binding(self, kind: str, value, module: str, function, local: dict) -> bool:
        if kind == "value":
            return self.safe(value, module, function, local)
        if kind == "element":
            return self.elements_safe(value, module, function, local)
        return False  # a parameter, or what a context manager yields

    def elements_safe(self, node: ast.expr, module: str, function, local: dict) -> bool:
        """Whether every element of the iterable `node` (and every part of a tuple element) is safe."""
        match node:
            case ast.Tuple(elts=elements) | ast.List(elts=elements) | ast.Set(elts=elements):
                return all(self.safe(element, module, function, local) for element in elements)
            case ast.BinOp(op=ast.Mult(), left=sequence):  # ["%s"] * n
                return self.elements_safe(sequence, module, function, local)
            case (
                ast.ListComp(elt=element, generators=generators)
                | ast.GeneratorExp(elt=element, generators=generators)
                | ast.SetComp(elt=element, generators=generators)
            ):
                inner = dict(local)
                for generator in generators:
                    safe_elements = self.elements_safe(generator.iter, module, function, inner)
                    for target in ast.walk(generator.target):
                        if isinstance(target, ast.Name):
                            inner[target.id] = safe_elements
                return self.safe(element, module, function, inner)
            case ast.Call(func=ast.Name(id=name), args=[argument]) if name in SEQUENCE_FUNCTIONS:
                return self.elements_safe(argument, module, function, local)
            case ast.Name(id=name):
                if name in local:
                    return local[name]
                bindings = self._scope_bindings(function).get(name)
                if bindings:
                    return all(
                        kind == "value" and self.elements_safe(value, module, function, local)
                        for kind, value in bindings
                    )
                target = self._resolve(name, module)
                if target is None or target[1] not in self.modules[target[0]].constants:
                    return False
                return all(
                    self.elements_safe(value, target[0], None, {})
                    for value in self.modules[target[0]].constants[target[1]]
                )
        return False

    def function_returns_safe(self, module: str, name: str) -> bool:
        key = (module, name)
        if key not in self.function_memo:
            self.function_memo[key] = False  # recursion: not provable
            function = self.modules[module].functions[name]
            returns = [node.value for node in ast.walk(function) if isinstance(node, ast.Return)]
            self.function_memo[key] = bool(returns) and all(
                value is not None and self.safe(value, module, function) for value in returns
            )
        return self.function_memo[key]


def load_modules() -> dict[str, Module]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[dotted] = Module.parse(path)
    return modules


def is_execute(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in EXECUTE_METHODS
        and bool(node.args)
    )


def execute_calls(module: Module):
    """(function qualname, function, call) for every `.execute(...)`/`.executemany(...)` with a statement."""
    for qualname, function in module.functions.items():
        for node in ast.walk(function):
            if is_execute(node):
                yield qualname, function, node
    top_level = [node for node in module.tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)]
    for statement in top_level:
        for node in ast.walk(statement):
            if is_execute(node):
                yield "<module>", None, node


def unsafe_statements(modules: dict[str, Module]) -> tuple[list[str], set[tuple[str, str]], int]:
    checker = Checker(modules)
    offenders, allowed_used, checked = [], set(), 0
    for dotted, module in modules.items():
        relative = str(module.path.relative_to(REPO_ROOT))
        for qualname, function, call in execute_calls(module):
            checked += 1
            if checker.safe(call.args[0], dotted, function):
                continue
            if (relative, qualname) in ALLOWED:
                allowed_used.add((relative, qualname))
                continue
            offenders.append(f"{relative}:{call.lineno} in {qualname}: {ast.unparse(call.args[0])}")
    return offenders, allowed_used, checked


def test_every_statement_is_constant_or_built_from_quoting_helpers() -> None:
    offenders, allowed_used, checked = unsafe_statements(load_modules())
    assert checked > 20, "the scan found the project's statements"
    assert not offenders, (
        "SQL built from values that are not quoted with waldinger_assets/snowflake_sql.py helpers (pass values as "
        "bind parameters, names through quote_identifier/qualified_name):\n" + "\n".join(offenders)
    )
    stale = set(ALLOWED) - allowed_used
    assert not stale, f"ALLOWED entries that no longer match an unprovable statement; remove them: {sorted(stale)}"


def offenders_in(source: str) -> list[str]:
    imports = "from resources.snowflake_sql import qualified_name, quote_identifier\n"
    return unsafe_statements({"snippet": Module.parse(REPO_ROOT / "snippet.py", imports + source)})[0]


UNSAFE_SNIPPETS = {
    "a parameter in an f-string": "def f(cursor, table):\n    cursor.execute(f'SELECT * FROM {table}')",
    "a value concatenated": 'def f(cursor, value):\n    cursor.execute("SELECT 1 WHERE A = \'" + value + "\'")',
    "%-formatting": "def f(cursor, value):\n    cursor.execute('SELECT %s' % value)",
    "a fetched name": "def f(cursor):\n    name = cursor.fetchone()[0]\n    cursor.execute(f'DROP TABLE {name}')",
    "a joined parameter": "def f(cursor, names):\n    cursor.execute(f\"SELECT {', '.join(names)} FROM T\")",
    "a builder of a parameter": "def sql(x):\n    return f'SELECT {x}'\ndef f(c, x):\n    c.executemany(sql(x), [])",
    "str() of a value": "def f(cursor, day):\n    cursor.execute(f'SELECT 1 WHERE D = {str(day)}')",
    "a loop over fetched rows": "def f(c):\n    for (n,) in c.fetchall():\n        c.execute(f'CHECKPOINT \"{n}\"')",
    "a look-alike helper": (
        "def quote_identifier(x):\n    return x\ndef f(c, t):\n    c.execute(f'DROP {quote_identifier(t)}')"
    ),
}
SAFE_SNIPPETS = {
    "a constant": "def f(cursor):\n    cursor.execute('COMMIT')",
    "quoted names, bound values": (
        "def f(cursor, db, schema, day):\n"
        "    cursor.execute(f'SELECT * FROM {qualified_name(db, schema, \"T\")} WHERE D = %s', (day,))"
    ),
    "a module constant and a local": (
        "TABLE = ('W', 'L', 'P')\nCOLUMNS = (('A', 'INT'), ('B', 'DATE'))\n"
        "def f(cursor, rows):\n"
        "    columns = ', '.join(f'{quote_identifier(n)} {t}' for n, t in COLUMNS)\n"
        "    marks = ', '.join(['%s'] * len(COLUMNS))\n"
        "    insert = f'INSERT INTO {qualified_name(*TABLE)} ({columns}) VALUES ({marks})'\n"
        "    cursor.executemany(insert, rows)"
    ),
    "a loop over constants and a numbered limit": (
        "def f(cursor, db, size):\n"
        "    for view in ('TABLES', 'VIEWS'):\n"
        "        cursor.execute(f'SELECT * FROM {quote_identifier(db)}.INFORMATION_SCHEMA.{view} LIMIT {int(size)}')"
    ),
    "a builder whose returns are safe": (
        "def sql(db):\n    return 'SELECT ' + f'* FROM {quote_identifier(db)}.X'\n"
        "def f(cursor):\n    cursor.execute(sql('RAW'))"
    ),
}


def test_the_rule_flags_values_in_sql_with_their_place() -> None:
    for label, source in UNSAFE_SNIPPETS.items():
        offenders = offenders_in(source)
        assert len(offenders) == 1 and offenders[0].startswith("snippet.py:"), (label, offenders)
    for label, source in SAFE_SNIPPETS.items():
        assert offenders_in(source) == [], label
