"""Pins each private Dagster name the project uses (resources/dagster_internals.py): an upgrade that moves
one fails here, with the name, instead of in a sensor or the run launcher at run time."""

import importlib

import pytest

PRIVATE_IMPORTS = [
    ("dagster._core.errors", "DagsterInvalidConfigError"),
    ("dagster._core.errors", "DagsterPipesExecutionError"),
    ("dagster._core.storage.asset_check_execution_record", "AssetCheckExecutionRecordStatus"),
    ("dagster._core.storage.tags", "RUN_KEY_TAG"),
    ("dagster._serdes.config_class", "ConfigurableClassData"),
    ("dagster._utils.cached_method", "cached_method"),
    ("dagster._utils.schedules", "is_valid_cron_string"),
]


@pytest.mark.parametrize(("module", "name"), PRIVATE_IMPORTS)
def test_each_private_name_is_where_the_adapter_takes_it_from(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} moved: update dagster_internals.py"


def test_the_adapter_exports_exactly_the_pinned_names():
    from resources import dagster_internals

    assert sorted(dagster_internals.__all__) == sorted(name for _, name in PRIVATE_IMPORTS)


def test_the_names_keep_their_meaning():
    from resources.dagster_internals import RUN_KEY_TAG, AssetCheckExecutionRecordStatus, is_valid_cron_string

    assert RUN_KEY_TAG == "dagster/run_key"
    assert {"PLANNED", "SUCCEEDED", "FAILED"} <= {status.name for status in AssetCheckExecutionRecordStatus}
    assert is_valid_cron_string("30 0 * * *") and not is_valid_cron_string("every day")


def test_no_other_module_imports_dagster_private_names():
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    offenders = []
    for folder in ("waldinger_assets", "resources", "sensors", "runtime", "infra_pulumi"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "dagster_internals.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                private = [m for m in modules if m.startswith("dagster") and "._" in m]
                offenders += [f"{path.relative_to(root)}:{node.lineno} {m}" for m in private]
    assert not offenders, "private Dagster imports outside resources/dagster_internals.py: " + ", ".join(offenders)
