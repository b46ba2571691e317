"""The Azure ML job endpoints, faked at the HTTP boundary on top of tests/fakes/azure_ml.py: what
`MLClient.create_or_update(command)`, `jobs.get` and `jobs.download` call (the `name@latest` environment
look-up, the upload of a local input to the workspace datastore, the job PUT and GETs, workspace discovery, run
history and the data-plane look-up of output locations, blob listing and download), plus the blob download and
delete the Dagster Pipes context injector and message reader use.

A submitted job runs its real command, the way the cluster would: once the job leaves the queue, the fake
"node" mounts the job's inputs in a local folder (a uri_file input downloaded from the workspace datastore, a
custom_model input copied from the folder the test registered for that model version, inside a folder of its
own as Azure ML mounts a model), gives each output an empty folder, replaces the `${{inputs.*}}` and
`${{outputs.*}}` of the command with those paths and runs it with bash in a subprocess, with the job's
environment variables (Pipes' bootstrap variables among them) on top of this environment and this
interpreter's `python` first on PATH (the image's Python). The job ends Completed when the command exits 0,
Failed otherwise; its output folders are then uploaded to `azureml/<job name>/<output name>/` in the workspace
blob datastore, where Azure ML puts a command job's default outputs, and its stdout and stderr are kept in
`user_logs/std_log.txt`.

Blob Storage is shared between the two processes: `install_job_routes` keeps the transport's blobs in a
directory (DirectoryBlobs), and the job's process imports tests/fakes/azure_ml_node/sitecustomize.py at start-up,
which gives its BlobServiceClient a FakeTransport over the same directory and its DefaultAzureCredential a fake
identity. So the job opens Pipes with its own code, against the same container the Dagster side reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.azure_ml import CONTAINER, NOW, WORKSPACE_ID, WS, FakeTransport
from tests.fakes.blob_storage import DirectoryBlobs, _route_first, install_blob_routes

DEFAULT_DATASTORE = "workspaceblobstore"
MANAGEMENT_PREFIX = r"^management\.azure\.com" + re.escape(WORKSPACE_ID)
# The data-plane services (run history, data) answer on the workspace's regional host with the same ARM path.
DATAPLANE_HOST = r"^[a-z0-9-]+\.api\.azureml\.ms"
WORKSPACE_PATH = re.escape(WORKSPACE_ID)
TERMINAL = {"Completed", "Failed", "Canceled"}
# How the job's process finds the shared Blob Storage and where it logs its requests (read by the node's
# sitecustomize; nothing of the project reads them).
NODE_BLOB_DIR_VARIABLE = "FAKE_AZURE_BLOB_DIR"
NODE_REQUEST_LOG_VARIABLE = "FAKE_AZURE_REQUEST_LOG"
NODE_SITE_DIR = Path(__file__).resolve().parent / "azure_ml_node"
JOB_TIMEOUT_SECONDS = 300
PLACEHOLDER = re.compile(r"\$\{\{\s*(?P<kind>inputs|outputs)\.(?P<name>[A-Za-z0-9_]+)\s*\}\}")


# ---- jobs ---------------------------------------------------------------------------------------
class ClusterError(RuntimeError):
    """The fake cluster cannot run this job as submitted (an input it cannot mount)."""


@dataclass
class FakeJob:
    name: str
    properties: dict[str, Any]
    status: str = "NotStarted"
    statuses_seen: list[str] = field(default_factory=list)
    workdir: Path | None = None
    command_line: str | None = None  # the command as the node ran it, placeholders replaced
    process: subprocess.Popen | None = None
    started: float = 0.0
    failure: str | None = None  # why the node could not start or finish the job

    @property
    def std_log(self) -> str:
        """The job's stdout and stderr, as Azure ML keeps them in user_logs/std_log.txt."""
        assert self.workdir is not None, f"job {self.name} never started"
        return (self.workdir / "user_logs" / "std_log.txt").read_text(errors="replace")

    def mounted(self, kind: str, name: str) -> Path:
        """The local folder behind the job's input or output `name` (kind: "inputs" or "outputs")."""
        assert self.workdir is not None, f"job {self.name} never started"
        return self.workdir / kind / name

    def blob_requests(self) -> list[dict[str, Any]]:
        """Every Blob Storage request the job's process made, in order."""
        assert self.workdir is not None, f"job {self.name} never started"
        log = self.workdir / "blob_requests.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def output_prefix(job_name: str, output: str) -> str:
    """Where Azure ML writes a command job's output that has no explicit path."""
    return f"azureml/{job_name}/{output}/"


def _job_import_path() -> list[str]:
    """What the image has installed: the project's runtime package (the copy these tests import)."""
    spec = importlib.util.find_spec("waldinger_runtime")
    assert spec is not None and spec.origin, "waldinger_runtime is not importable; put runtime/ on PYTHONPATH"
    return [str(Path(spec.origin).resolve().parent.parent)]


class FakeJobService:
    """Azure ML jobs: created by PUT, advanced by GETs (NotStarted, Queued, Running, then Completed or Failed),
    their commands run as subprocesses on the fake node. `models` maps a registered model version
    ("name:version") to the folder the node mounts for it; a test may change it between jobs."""

    def __init__(self, transport: FakeTransport, root: Path, models: dict[str, Path]) -> None:
        self.transport = transport
        self.root = Path(root)
        self.models = dict(models)
        self.jobs: dict[str, FakeJob] = {}

    def created(self) -> list[FakeJob]:
        return list(self.jobs.values())

    def put_bodies(self) -> list[dict[str, Any]]:
        return [
            r["json"]
            for r in self.transport.requests
            if r["method"] == "PUT" and re.search(r"/jobs/[^/]+$", r["path"]) and r["host"] == "management.azure.com"
        ]

    def close(self) -> None:
        """Kills the commands still running (a test that failed halfway leaves none behind)."""
        for job in self.jobs.values():
            if job.process is not None and job.process.poll() is None:
                job.process.kill()
                job.process.wait()

    # -- the node ------------------------------------------------------------------------
    def _mount_input(self, name: str, spec: dict[str, Any], folder: Path) -> Path:
        kind, uri = spec.get("jobInputType"), spec.get("uri", "")
        folder.mkdir(parents=True)
        if kind == "uri_file":
            found = re.search(rf"^azureml://datastores/{DEFAULT_DATASTORE}/paths/(?P<path>.+)$", uri)
            if not found or f"{CONTAINER}/{found['path']}" not in self.transport.blobs:
                raise ClusterError(f"input {name}: {uri} is not a file in the workspace datastore")
            target = folder / Path(found["path"]).name
            target.write_bytes(self.transport.blobs[f"{CONTAINER}/{found['path']}"]["data"])
            return target
        if kind == "custom_model":
            found = re.search(r"/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)$", uri)
            source = self.models.get(f"{found['model']}:{found['version']}") if found else None
            if source is None:
                raise ClusterError(f"input {name}: the fake cluster has no files for model {uri}")
            shutil.copytree(source, folder / Path(source).name)
            return folder
        raise ClusterError(f"input {name}: the fake cluster cannot mount a {kind} input")

    def _start(self, job: FakeJob) -> None:
        job.workdir = self.root / job.name
        paths: dict[str, Path] = {}
        try:
            for name, spec in (job.properties.get("inputs") or {}).items():
                paths[f"inputs.{name}"] = self._mount_input(name, spec, job.workdir / "inputs" / name)
            for name in job.properties.get("outputs") or {}:
                paths[f"outputs.{name}"] = job.workdir / "outputs" / name
                paths[f"outputs.{name}"].mkdir(parents=True)
            job.command_line = PLACEHOLDER.sub(
                lambda m: shlex.quote(str(paths[f"{m['kind']}.{m['name']}"])), job.properties["command"]
            )
        except (ClusterError, KeyError) as error:
            job.failure = f"the node could not start the job: {error}"
            return
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES_")}
        environment = {
            **inherited,
            **(job.properties.get("environmentVariables") or {}),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(NODE_SITE_DIR), *_job_import_path()]),
            NODE_BLOB_DIR_VARIABLE: str(self.transport.blobs.root),
            NODE_REQUEST_LOG_VARIABLE: str(job.workdir / "blob_requests.jsonl"),
        }
        (job.workdir / "user_logs").mkdir()
        (job.workdir / "wd").mkdir()
        with (job.workdir / "user_logs" / "std_log.txt").open("wb") as log:
            job.process = subprocess.Popen(
                ["bash", "-c", job.command_line],
                cwd=job.workdir / "wd",
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        job.started = time.monotonic()

    def _finish(self, job: FakeJob) -> str:
        assert job.process is not None and job.workdir is not None
        for output in job.properties.get("outputs") or {}:
            folder = job.workdir / "outputs" / output
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                key = f"{CONTAINER}/{output_prefix(job.name, output)}{path.relative_to(folder).as_posix()}"
                self.transport.blobs[key] = {"data": path.read_bytes(), "metadata": {}}
        return "Completed" if job.process.returncode == 0 else "Failed"

    def advance(self, job: FakeJob) -> str:
        if job.status == "NotStarted":
            job.status = "Queued"
        elif job.status == "Queued":
            job.status = "Running"
            self._start(job)
        elif job.status == "Running":
            if job.process is None:
                job.status = "Failed"
            elif job.process.poll() is not None:
                job.status = self._finish(job)
            elif time.monotonic() - job.started > JOB_TIMEOUT_SECONDS:
                job.process.kill()
                job.process.wait()
                job.failure = f"the command ran past {JOB_TIMEOUT_SECONDS} s and was killed"
                job.status = "Failed"
        job.statuses_seen.append(job.status)
        return job.status

    def job_json(self, job: FakeJob) -> dict[str, Any]:
        properties = {
            **job.properties,
            "status": job.status,
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{job.name}?wsid={WORKSPACE_ID}",
                }
            },
        }
        return {
            "id": f"{WORKSPACE_ID}/jobs/{job.name}",
            "name": job.name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": properties,
            "systemData": {"createdAt": NOW, "createdBy": "fake@example.com", "createdByType": "User"},
        }


def install_job_routes(
    t: FakeTransport,
    root: Path,
    models: dict[str, Path],
    *,
    environments: dict[str, list[str]] | None = None,
) -> FakeJobService:
    """Adds the job routes to a FakeTransport that already has `install_routes`, and moves its blobs into a
    directory under `root` that jobs share (the jobs' folders are under `root` too). `models` maps a model
    version ("name:version") to the folder a job's custom_model input mounts; `environments` maps an
    environment name to its versions, oldest first."""
    root = Path(root)
    shared = DirectoryBlobs(root / "blob-storage")
    shared.update(t.blobs)
    t.blobs = shared
    install_blob_routes(t)
    service = FakeJobService(t, root / "jobs", models)
    environments = environments if environments is not None else {"waldinger-serving": ["1", "2", "3"]}

    # ---- environments --------------------------------------------------------------------
    def _environment_json(name: str, version: str) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/environments/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
            "properties": {
                "image": f"waldinger.azurecr.io/waldinger:{version}",
                "osType": "Linux",
                "environmentType": "UserCreated",
                "isAnonymous": False,
                "isArchived": False,
                "provisioningState": "Succeeded",
            },
            "systemData": {"createdAt": NOW, "createdBy": "fake@example.com", "createdByType": "User"},
        }

    @_route_first(t, "GET", MANAGEMENT_PREFIX + r"/environments/(?P<name>[^/]+)/versions$")
    def environment_versions(t, req, m, rec):
        versions = list(reversed(environments.get(m["name"], [])))  # $orderBy=createdtime desc
        top = rec["query"].get("$top")
        if top:
            versions = versions[: int(top)]
        return 200, {}, {"value": [_environment_json(m["name"], v) for v in versions]}

    # ---- jobs ---------------------------------------------------------------------------------
    @_route_first(t, "PUT", MANAGEMENT_PREFIX + r"/jobs/(?P<name>[^/]+)$")
    def job_put(t, req, m, rec):
        name = m["name"]
        if name in service.jobs:
            return 400, {}, {"error": {"code": "UserError", "message": f"A job with name {name} already exists."}}
        job = FakeJob(name=name, properties=dict((rec["json"] or {}).get("properties") or {}))
        service.jobs[name] = job
        return 201, {}, service.job_json(job)

    @_route_first(t, "GET", MANAGEMENT_PREFIX + r"/jobs/(?P<name>[^/]+)$")
    def job_get(t, req, m, rec):
        job = service.jobs.get(m["name"])
        if job is None:
            return 404, {}, {"error": {"code": "UserError", "message": f"job {m['name']} not found"}}
        if job.status not in TERMINAL:
            service.advance(job)
        return 200, {}, service.job_json(job)

    # ---- run history and data plane: where did the job's outputs go? --------------------
    @_route_first(t, "GET", DATAPLANE_HOST + r"/discovery$")
    def discovery(t, req, m, rec):
        api = f"https://{rec['host']}"
        return 200, {}, {"api": api, "catalog": api, "experimentation": api, "history": api, "modelmanagement": api}

    def _output_asset_id(job_name: str, output: str) -> str:
        return f"azureml://locations/westeurope/workspaces/{WS}/data/azureml_{job_name}_output_data_{output}/versions/1"

    @_route_first(t, "POST", DATAPLANE_HOST + r"/history/v1\.0" + WORKSPACE_PATH + r"/rundata$")
    def run_data(t, req, m, rec):
        name = (rec["json"] or {}).get("runId")
        job = service.jobs.get(name)
        if job is None:
            return 404, {}, {"error": {"code": "UserError", "message": f"run {name} not found"}}
        outputs = {
            output: {"assetId": _output_asset_id(job.name, output), "type": "uri_folder"}
            for output in (job.properties.get("outputs") or {})
        }
        return 200, {}, {"runMetadata": {"runId": job.name, "status": job.status, "outputs": outputs}}

    @_route_first(t, "POST", DATAPLANE_HOST + r"/data/v1\.0" + WORKSPACE_PATH + r"/dataversion/batchGetResolvedUris$")
    def resolved_uris(t, req, m, rec):
        values = {}
        for asset_id in (rec["json"] or {}).get("values", []):
            found = re.search(r"/data/azureml_(?P<job>.+)_output_data_(?P<output>[^/]+)/versions/", asset_id)
            if found:
                uri = f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{output_prefix(found['job'], found['output'])}"
                values[asset_id] = {"uri": uri, "type": "uri_folder"}
        return 200, {}, {"values": values}

    return service
