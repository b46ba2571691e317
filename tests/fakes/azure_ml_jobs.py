"""The Azure ML job endpoints, faked at the HTTP boundary on top of tests/fakes/azure_ml.py: what
`MLClient.create_or_update(command)`, `jobs.get` and `jobs.download` call (the `name@latest` environment
look-up, the upload of a local input to the workspace datastore, the job PUT and GETs, workspace discovery, run
history and the data-plane look-up of output locations, blob listing and download), plus the blob download and
delete the Dagster Pipes context injector and message reader use.

The "remote job" is a function the test passes in. It runs in a thread of its own once the job leaves the
queue, the way the real command runs on the cluster while Dagster polls: it sees the job's environment
variables and inputs, writes its outputs where Azure ML puts a command job's default outputs
(`azureml/<job name>/<output name>/` in the workspace blob datastore), and talks Pipes through the same fake
Blob Storage. The job ends Completed when the function returns, Failed when it raises.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from tests.fakes.azure_ml import ACCOUNT, CONTAINER, NOW, WORKSPACE_ID, WS, FakeTransport, _blob_headers

DEFAULT_DATASTORE = "workspaceblobstore"
ACCOUNT_URL = f"https://{ACCOUNT}.blob.core.windows.net"
MANAGEMENT_PREFIX = r"^management\.azure\.com" + re.escape(WORKSPACE_ID)
# The data-plane services (run history, data) answer on the workspace's regional host with the same ARM path.
DATAPLANE_HOST = r"^[a-z0-9-]+\.api\.azureml\.ms"
WORKSPACE_PATH = re.escape(WORKSPACE_ID)
TERMINAL = {"Completed", "Failed", "Canceled"}


@dataclass
class RemoteJob:
    """What the job's process sees on the cluster."""

    name: str
    command: str
    environment_variables: dict[str, str]
    inputs: dict[str, dict[str, Any]]
    transport: FakeTransport

    def option(self, flag: str) -> str:
        """The value that follows `flag` on the job's command line."""
        words = shlex.split(self.command)
        assert flag in words, f"{flag} is not on the job's command line: {self.command}"
        return words[words.index(flag) + 1]

    def read_input(self, name: str) -> bytes:
        """The bytes of a uri_file input that was uploaded to the workspace datastore."""
        uri = self.inputs[name]["uri"]
        match = re.search(r"/datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)$", uri)
        assert match, f"input {name} is not a datastore path: {uri}"
        return self.transport.blobs[f"{CONTAINER}/{match['path']}"]["data"]

    def write_output(self, output: str, relative_path: str, data: bytes) -> None:
        with self.transport._lock:
            self.transport.blobs[f"{CONTAINER}/{output_prefix(self.name, output)}{relative_path}"] = {
                "data": data,
                "metadata": {},
            }


Script = Callable[[RemoteJob], Any]  # what it returns is kept on the FakeJob, for the test to look at


@dataclass
class FakeJob:
    name: str
    properties: dict[str, Any]
    status: str = "NotStarted"
    statuses_seen: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None
    returned: Any = None
    error: BaseException | None = None


def output_prefix(job_name: str, output: str) -> str:
    """Where Azure ML writes a command job's output that has no explicit path."""
    return f"azureml/{job_name}/{output}/"


class FakeJobService:
    """In-memory Azure ML jobs: created by PUT, advanced by GETs (NotStarted, Queued, Running, then Completed
    or Failed), their scripts run in threads."""

    def __init__(self, transport: FakeTransport, script: Script) -> None:
        self.transport = transport
        self.script = script
        self.jobs: dict[str, FakeJob] = {}

    def created(self) -> list[FakeJob]:
        return list(self.jobs.values())

    def put_bodies(self) -> list[dict[str, Any]]:
        return [
            r["json"]
            for r in self.transport.requests
            if r["method"] == "PUT" and re.search(r"/jobs/[^/]+$", r["path"]) and r["host"] == "management.azure.com"
        ]

    # -- the job's life ------------------------------------------------------------------
    def _start(self, job: FakeJob) -> None:
        remote = RemoteJob(
            name=job.name,
            command=job.properties["command"],
            environment_variables=dict(job.properties.get("environmentVariables") or {}),
            inputs=dict(job.properties.get("inputs") or {}),
            transport=self.transport,
        )

        def run() -> None:
            try:
                job.returned = self.script(remote)
            except BaseException as exc:
                job.error = exc

        job.thread = threading.Thread(target=run, name=f"fake-azureml-job-{job.name}", daemon=True)
        job.thread.start()

    def advance(self, job: FakeJob) -> str:
        if job.status == "NotStarted":
            job.status = "Queued"
        elif job.status == "Queued":
            job.status = "Running"
            self._start(job)
        elif job.status == "Running" and job.thread is not None and not job.thread.is_alive():
            job.status = "Failed" if job.error is not None else "Completed"
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


def _route_first(t: FakeTransport, method: str, pattern: str):
    """Registers ahead of tests/fakes/azure_ml.py's routes: its catch-all container GET answers 404."""

    def deco(fn):
        t.routes.insert(0, (method, re.compile(pattern, re.I), fn))
        return fn

    return deco


def install_job_routes(
    t: FakeTransport,
    script: Script,
    *,
    environments: dict[str, list[str]] | None = None,
) -> FakeJobService:
    """Adds the job routes to a FakeTransport that already has `install_routes`. `environments` maps an
    environment name to its versions, oldest first."""
    service = FakeJobService(t, script)
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

    # ---- Blob Storage beyond uploads: download, list, delete -----------------------------
    blob_pattern = rf"^{re.escape(ACCOUNT)}\.blob\.core\.windows\.net/(?P<container>[^/]+)/(?P<blob>.+)$"

    @_route_first(t, "GET", blob_pattern)
    def blob_get(t, req, m, rec):
        stored = t.blobs.get(f"{m['container']}/{m['blob']}")
        if stored is None:
            return 404, _blob_headers({"x-ms-error-code": "BlobNotFound"}), None
        data: bytes = stored["data"]
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
        requested = rec["headers"].get("x-ms-range") or rec["headers"].get("Range")
        if not requested:
            return 200, _blob_headers(headers), data
        start, _, end = requested.removeprefix("bytes=").partition("-")
        if not data:
            return 416, _blob_headers({"x-ms-error-code": "InvalidRange"}), None
        first, last = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return 206, _blob_headers(headers), data[first : last + 1]

    @_route_first(t, "DELETE", blob_pattern)
    def blob_delete(t, req, m, rec):
        if t.blobs.pop(f"{m['container']}/{m['blob']}", None) is None:
            return 404, _blob_headers({"x-ms-error-code": "BlobNotFound"}), None
        return 202, _blob_headers({"x-ms-delete-type-permanent": "true"}), None

    @_route_first(t, "GET", rf"^{re.escape(ACCOUNT)}\.blob\.core\.windows\.net/(?P<container>[^/]+)/?$")
    def container_list(t, req, m, rec):
        query = rec["query"]
        if query.get("comp") != "list":
            return 404, _blob_headers({"x-ms-error-code": "ContainerNotFound"}), None
        return (
            200,
            _blob_headers({"Content-Type": "application/xml"}),
            _list_blobs_xml(t, m["container"], query.get("prefix", ""), query.get("delimiter")),
        )

    return service


def _list_blobs_xml(t: FakeTransport, container: str, prefix: str, delimiter: str | None) -> str:
    names = sorted(key.split("/", 1)[1] for key in t.blobs if key.startswith(f"{container}/"))
    names = [n for n in names if n.startswith(prefix)]
    blobs, prefixes = [], []
    for name in names:
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter, 1)[0] + delimiter
            if folder not in prefixes:
                prefixes.append(folder)
            continue
        size = len(t.blobs[f"{container}/{name}"]["data"])
        blobs.append(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified><Etag>0x8DC0000000000000</Etag>"
            f"<Content-Length>{size}</Content-Length><Content-Type>application/octet-stream</Content-Type>"
            f"<BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>"
        )
    blob_prefixes = "".join(f"<BlobPrefix><Name>{escape(p)}</Name></BlobPrefix>" for p in prefixes)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="{ACCOUNT_URL}/" ContainerName="{escape(container)}">'
        f"<Prefix>{escape(prefix)}</Prefix>"
        + (f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "")
        + f"<Blobs>{''.join(blobs)}{blob_prefixes}</Blobs><NextMarker /></EnumerationResults>"
    )
