"""The lineage in the Dagster UI, checked the way a user sees it. A demo instance in a temporary DAGSTER_HOME
holds one run that materialized the whole graph for the session's day, after a drift against the accepted
baseline (so the drift report has a table to show). dagster-webserver serves it; the lineage is read through
Dagster's GraphQL API and in headless Chromium (Debian's package, driven by Playwright): the global asset graph
and the drift report's page. Screenshots land in test-artifacts/browser/. Every process it started is stopped,
whatever happens."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from resources.background_process import free_port
from tests.helpers import REPO_ROOT, SESSION_TODAY, VENV_BIN, instance_env, waldinger_cli
from waldinger_assets.batch.assets import BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY
from waldinger_assets.batch.names import BATCH_INPUT_TABLE
from waldinger_assets.demo_warehouse.catalog import DemoCatalog
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.model.assets import (
    CHAT_CHECK,
    EVALUATION_CHECK,
    HASH_CHECK,
    MODEL_SOURCE_KEY,
    PRODUCTION_MODEL_KEY,
    REGISTERED_MODEL_KEY,
)
from waldinger_assets.schema_drift.assets import CONTRACT_CHECK, DRIFT_REPORT_KEY, SNAPSHOT_KEY, WAREHOUSE_CHECK
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY, REALTIME_DEPLOYMENT_KEY, SERVES_PRODUCTION_CHECK
from waldinger_assets.training.names import FINE_TUNED_MODEL_KEY, LABELED_EXAMPLES_TABLE, TRAINING_DATASET_KEY

pytestmark = pytest.mark.slow
# The asset graph fills each node's events and checks lazily; at the end of a long suite on 2 cores that took
# longer than Playwright's default 5 s (seen once: "Loading..."), so every expectation waits as long as the UI may.
expect.set_options(timeout=30_000)

# Debian's Chromium by default; CI on Ubuntu points CHROMIUM at the runner's Chrome (Makefile, ci.yml).
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps dialling Google's services, which a closed network
# answers with a stream of refused connections.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHROMIUM_MISSING = (
    f"{CHROMIUM} not found: the browser tests drive Debian's Chromium. Run `make test` (it installs it), or as "
    "root: apt-get update && apt-get install -y --no-install-recommends chromium"
)
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
UI_TIMEOUT_MS = 30_000
STARTUP_DEADLINE_S = 120

PROMPTS_KEY = list(BATCH_INPUT_TABLE)
# The external tables: upstream systems write them, nothing in the graph materializes them.
EXTERNAL = {tuple(PROMPTS_KEY), tuple(LABELED_EXAMPLES_TABLE)}
# The run's drift, made after the baseline is accepted: non-breaking, so every check that blocks passes and the
# whole graph materializes, while the drift report lists both changes in its Markdown table.
DRIFT_STATEMENTS = (
    'ALTER TABLE "WALDINGER"."LLM"."PROMPTS" ADD COLUMN "TOPIC" VARCHAR(200)',
    'CREATE TABLE "WALDINGER"."LLM"."PROMPT_FEEDBACK" ("PROMPT_ID" VARCHAR(64), "RATING" NUMBER(38,0))',
)
DRIFT_TABLE_HEADER = ["severity", "object", "type", "change", "column", "before", "after"]
DRIFT_TABLE_ROWS = [
    ["non_breaking (contract)", "WALDINGER.LLM.PROMPTS", "TABLE", "column_added", "TOPIC", "", "VARCHAR(200)"],
    ["non_breaking", "WALDINGER.LLM.PROMPT_FEEDBACK", "TABLE", "object_added", "", "", "WALDINGER.LLM.PROMPT_FEEDBACK"],
]

# (upstream, downstream): snapshot -> drift report -> batch input and outputs; model source -> registered model
# -> production model -> both deployments; the batch deployment -> batch outputs.
LINEAGE_EDGES = {
    (tuple(SNAPSHOT_KEY), tuple(DRIFT_REPORT_KEY)),
    (tuple(DRIFT_REPORT_KEY), tuple(BATCH_INPUT_KEY)),
    (tuple(DRIFT_REPORT_KEY), tuple(BATCH_OUTPUTS_KEY)),
    (tuple(PROMPTS_KEY), tuple(BATCH_INPUT_KEY)),
    (tuple(BATCH_INPUT_KEY), tuple(BATCH_OUTPUTS_KEY)),
    (tuple(LABELED_EXAMPLES_TABLE), tuple(TRAINING_DATASET_KEY)),
    (tuple(TRAINING_DATASET_KEY), tuple(FINE_TUNED_MODEL_KEY)),
    (tuple(MODEL_SOURCE_KEY), tuple(FINE_TUNED_MODEL_KEY)),
    (tuple(FINE_TUNED_MODEL_KEY), tuple(REGISTERED_MODEL_KEY)),
    (tuple(REGISTERED_MODEL_KEY), tuple(PRODUCTION_MODEL_KEY)),
    (tuple(PRODUCTION_MODEL_KEY), tuple(REALTIME_DEPLOYMENT_KEY)),
    (tuple(PRODUCTION_MODEL_KEY), tuple(BATCH_DEPLOYMENT_KEY)),
    (tuple(BATCH_DEPLOYMENT_KEY), tuple(BATCH_OUTPUTS_KEY)),
}
LINEAGE_ASSETS = {key for edge in LINEAGE_EDGES for key in edge}
PARTITIONED = {tuple(BATCH_INPUT_KEY), tuple(BATCH_OUTPUTS_KEY)}
# Check -> (latest status, blocking). The warehouse check warns about the drift above; the rest pass.
CHECKS = {
    tuple(DRIFT_REPORT_KEY): {CONTRACT_CHECK: ("SUCCEEDED", True), WAREHOUSE_CHECK: ("FAILED", False)},
    tuple(REGISTERED_MODEL_KEY): {
        HASH_CHECK: ("SUCCEEDED", True),
        CHAT_CHECK: ("SUCCEEDED", True),
        EVALUATION_CHECK: ("SUCCEEDED", True),
    },
    tuple(REALTIME_DEPLOYMENT_KEY): {SERVES_PRODUCTION_CHECK: ("SUCCEEDED", False)},
}
# What the asset graph prints in a node's "Asset checks" row.
CHECK_SUMMARIES = {
    "drift_report": "1 / 2 Passed",
    "registered_model": "3 / 3 Passed",
    "realtime_deployment": "1 / 1 Passed",
}

ASSET_NODES_QUERY = """{ assetNodes {
  assetKey { path } dependencyKeys { path } dependedByKeys { path }
  assetMaterializations(limit: 1) { runId partition }
  assetChecksOrError { __typename ... on AssetChecks { checks { name blocking
    executionForLatestMaterialization { status } } } } } }"""


class DemoInstance:
    """A temporary Dagster instance holding one run of the whole graph, and the webserver in front of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.home = root / "dagster_home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = instance_env(
            root,
            WALDINGER_BATCH_START_DATE=(SESSION_TODAY - dt.timedelta(days=30)).isoformat(),
            WALDINGER_DAGSTER_URL=self.url,
            # The graph as the UI shows it, not the model's quality (tests/training): a short training run whose
            # version the gate lets through, so the deployments and the batch downstream of it run too.
            WALDINGER_TRAINING_STEPS="300",
            WALDINGER_PROMOTION_MIN_EXACT_MATCH="0",
        )
        self.webserver: subprocess.Popen | None = None

    def materialize(self) -> None:
        """What `make demo` does, kept small: the WALDINGER database alone (not the 3,000-object catalog), the
        baseline accepted, then one run of every asset for the session's day."""
        from resources.warehouse import embedded_warehouse

        self.home.mkdir(parents=True)
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        warehouse = embedded_warehouse(self.data_dir)
        seed(warehouse.get_connection, today=SESSION_TODAY, catalog=DemoCatalog((), ()))
        accepted = waldinger_cli("drift", "accept", env=self.env)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        with warehouse.get_connection() as connection:
            cursor = connection.cursor()
            for statement in DRIFT_STATEMENTS:
                cursor.execute(statement)
        # All steps in one process: a process per step spends most of the run importing (80 s instead of 35 s
        # on two cores).
        in_process = json.dumps({"execution": {"config": {"in_process": {}}}})
        command = [
            str(VENV_BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "waldinger_assets.definitions",
            "--select",
            "*",
            "--partition",
            SESSION_TODAY.isoformat(),
            "--config-json",
            in_process,
        ]
        run = subprocess.run(
            command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
        )
        assert run.returncode == 0, f"materializing the demo graph failed:\n{(run.stdout + run.stderr)[-5000:]}"

    def start_webserver(self) -> None:
        log = open(self.root / "webserver.log", "w")  # noqa: SIM115 - closed with the process
        self.webserver = subprocess.Popen(
            [str(VENV_BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        started = time.monotonic()
        while time.monotonic() - started < STARTUP_DEADLINE_S:
            assert self.webserver.poll() is None, f"dagster-webserver exited\n{self.log_tail()}"
            if self._code_location_loaded():
                return
            time.sleep(1)
        pytest.fail(f"the webserver did not load the code location in {STARTUP_DEADLINE_S} s\n{self.log_tail()}")

    def _code_location_loaded(self) -> bool:
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )
        except OSError:
            return False  # not listening yet
        entries = data["workspaceOrError"]["locationEntries"]
        if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
            return False
        for entry in entries:
            location = entry["locationOrLoadError"]
            assert location["__typename"] == "RepositoryLocation", f"the code location failed to load: {location}"
        return True

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tail(self) -> str:
        log = self.root / "webserver.log"
        return f"--- webserver.log (tail) ---\n{log.read_text(errors='replace')[-3000:]}" if log.exists() else ""

    def stop(self) -> None:
        """Stops the webserver and its code server, the local endpoint the run deployed, and the warehouse."""
        if self.webserver is not None:
            if self.webserver.poll() is None:
                os.killpg(self.webserver.pid, signal.SIGTERM)
            try:
                self.webserver.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.webserver.pid, signal.SIGKILL)
                self.webserver.wait(timeout=10)
        for process in psutil.process_iter():  # a code server may have left the process group
            try:
                if process.pid != os.getpid() and process.environ().get("DAGSTER_HOME") == str(self.home):
                    process.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        # Both, even when the first fails: the realtime_deployment run started the endpoint.
        stopped = [waldinger_cli(server, "stop", env=self.env) for server in ("serve", "warehouse")]
        for result in stopped:
            assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInstance]:
    instance = DemoInstance(tmp_path_factory.mktemp("lineage"))
    try:
        instance.materialize()
        instance.start_webserver()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser profile; the page as it was when the test ended is kept, passed or failed."""
    # Wide enough that the asset graph, zoomed to fit, draws full nodes (name, checks, status) rather than bare
    # names, and that the drift table fits its metadata cell; tall enough for the whole drift report page.
    context = browser.new_context(viewport={"width": 2400, "height": 1600})
    # On localhost the UI opens a "Join the Dagster community" dialog over every page until it is dismissed;
    # this is what its Skip button stores.
    context.add_init_script("window.localStorage.setItem('communityNux', '1')")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    finally:
        context.close()


def edges_from(asset_nodes: list[dict]) -> tuple[set, set]:
    """(upstream, downstream) pairs as each node lists its dependencies, and as each lists its dependents."""
    upstream_view = {
        (tuple(dependency["path"]), tuple(node["assetKey"]["path"]))
        for node in asset_nodes
        for dependency in node["dependencyKeys"]
    }
    downstream_view = {
        (tuple(node["assetKey"]["path"]), tuple(dependent["path"]))
        for node in asset_nodes
        for dependent in node["dependedByKeys"]
    }
    return upstream_view, downstream_view


def test_graphql_lists_the_lineage_its_checks_and_one_run_that_materialized_it(demo: DemoInstance) -> None:
    nodes = demo.graphql(ASSET_NODES_QUERY)["assetNodes"]
    by_key = {tuple(node["assetKey"]["path"]): node for node in nodes}
    assert not LINEAGE_ASSETS - set(by_key), f"assets missing: {sorted(LINEAGE_ASSETS - set(by_key))}"

    upstream_view, downstream_view = edges_from(nodes)
    assert upstream_view == downstream_view, "dependencyKeys and dependedByKeys disagree"
    assert not LINEAGE_EDGES - upstream_view, f"edges missing: {sorted(LINEAGE_EDGES - upstream_view)}"

    for key, expected in CHECKS.items():
        checks_or_error = by_key[key]["assetChecksOrError"]
        assert checks_or_error["__typename"] == "AssetChecks", checks_or_error
        found = {
            check["name"]: ((check["executionForLatestMaterialization"] or {}).get("status"), check["blocking"])
            for check in checks_or_error["checks"]
        }
        assert found == expected, key

    runs = demo.graphql("{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS"], runs
    (run,) = runs
    for key in LINEAGE_ASSETS - EXTERNAL:
        materializations = by_key[key]["assetMaterializations"]
        partition = SESSION_TODAY.isoformat() if key in PARTITIONED else None
        assert materializations == [{"runId": run["runId"], "partition": partition}], key
    for key in EXTERNAL:
        assert by_key[key]["assetMaterializations"] == [], key


def test_global_asset_graph_shows_the_whole_lineage(demo: DemoInstance, page: Page) -> None:
    page.goto(f"{demo.url}/asset-groups")
    graph = page.locator("svg foreignObject")
    # With several groups the global graph opens with each group collapsed into one box.
    for group in ("schema_drift", "training", "model", "serving", "batch"):
        expect(graph.locator(f'[data-tooltip="{group}"]').first).to_be_visible()
    page.keyboard.press("Alt+KeyE")  # the graph's "Expand all groups" shortcut
    for key in sorted(LINEAGE_ASSETS):
        expect(graph.locator(f'[data-tooltip="{key[-1]}"]')).to_be_visible()

    def node(name: str) -> Locator:
        return graph.filter(has=page.locator(f'[data-tooltip="{name}"]'))

    for name, summary in CHECK_SUMMARIES.items():
        expect(node(name)).to_contain_text(summary)
    for key in LINEAGE_ASSETS - PARTITIONED - EXTERNAL:
        expect(node(key[-1])).to_contain_text("Materialized")


def test_drift_report_page_renders_its_markdown_table_and_lineage(demo: DemoInstance, page: Page) -> None:
    page.goto(f"{demo.url}/assets/{'/'.join(DRIFT_REPORT_KEY)}")
    drift_row = page.locator("tr").filter(has=page.get_by_text("drift", exact=True))
    table = drift_row.locator(".dagster-markdown table")
    expect(table).to_be_visible()
    expect(table.locator("thead th")).to_have_text(DRIFT_TABLE_HEADER)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(DRIFT_TABLE_ROWS))
    for row, cells in zip(rows.all(), DRIFT_TABLE_ROWS, strict=True):
        expect(row.locator("td")).to_have_text(cells)
    assert "|---|" not in page.locator("body").inner_text(), "Markdown shown as raw text"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    drift_row.screenshot(path=ARTIFACTS / "drift_report_markdown_table.png")

    # The overview's lineage section: links to one asset upstream and to the two batch assets downstream.
    assert linked_assets(page, "Upstream assets") == ["/assets/" + "/".join(SNAPSHOT_KEY)]
    assert linked_assets(page, "Downstream assets") == sorted(
        "/assets/" + "/".join(key) for key in (BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY)
    )


def linked_assets(page: Page, heading: str) -> list[str]:
    """The asset pages linked under a heading of the asset overview's lineage section."""
    links = page.get_by_text(heading, exact=True).locator("xpath=following-sibling::div[1]//a")
    expect(links.first).to_be_visible()
    return sorted(links.evaluate_all("links => links.map(link => link.getAttribute('href'))"))
