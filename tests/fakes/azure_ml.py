"""A fake of Azure's HTTP endpoints for azure-ai-ml (the one boundary that cannot run here): it answers the
Azure Resource Manager calls of the model registry (datastore, secrets, model versions) and the Blob Storage
uploads of the artifact, in memory, and records every request so tests can assert on them.

`MLClient(..., transport=FakeTransport())` reaches the management clients; the SDK builds its blob client
without the transport, so `patch_blob_storage` hands it the same fake.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from requests.structures import CaseInsensitiveDict

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg"
WS = "ws"
ACCOUNT = "fakestorageacct"
CONTAINER = "azureml-blobstore-11111111-1111-1111-1111-111111111111"
FAKE_ACCOUNT_KEY = base64.b64encode(b"not-a-real-storage-account-key!!").decode()  # must be valid base64


# --------------------------------------------------------------------------------------
# Fake credential
# --------------------------------------------------------------------------------------
class FakeCredential:
    """Implements both TokenCredential (get_token) and SupportsTokenInfo (get_token_info)."""

    def __init__(self) -> None:
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, claims=None, tenant_id=None, enable_cae=False, **kwargs) -> AccessToken:
        self.scopes_requested.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options=None) -> AccessTokenInfo:
        self.scopes_requested.append(scopes)
        return AccessTokenInfo("fake-token", int(time.time()) + 3600)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------
# Fake transport
# --------------------------------------------------------------------------------------
class Recorded(dict):
    """dict with keys: method, url, path, query, headers, body (bytes), json (parsed or None), status."""


Handler = Callable[["FakeTransport", Any, re.Match, Recorded], tuple[int, dict[str, str], Any]]


class FakeTransport(HttpTransport):
    """Synchronous azure-core transport that never touches the network.

    Routes are (METHOD, compiled regex matched against "host/path", handler). A handler returns
    (status, headers, body) where body is dict/list (-> JSON), bytes, str or None.
    Works for both legacy azure.core.pipeline.transport.HttpRequest (used by azure-storage-blob)
    and azure.core.rest.HttpRequest (used by the generated azure-ai-ml REST clients).
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.blobs: dict[str, dict[str, Any]] = {}  # "container/blob" -> {"data": bytes, "metadata": {}}
        self.models: dict[tuple[str, str], dict[str, Any]] = {}  # (name, version) -> ARM json
        self._lock = threading.Lock()  # blob uploads run in a ThreadPoolExecutor
        self.fail_model_put = False  # set to answer the model version PUT with HTTP 500

    # -- HttpTransport abstract API ----------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request, **kwargs):
        body = self._request_body(request)
        parsed = urlparse(request.url)
        rec = Recorded(
            method=request.method,
            url=request.url,
            host=parsed.netloc,
            path=unquote(parsed.path),
            query={k: v[0] for k, v in parse_qs(parsed.query).items()},
            headers=dict(request.headers),
            body=body,
            json=None,
        )
        if body and "json" in rec["headers"].get("Content-Type", ""):
            with contextlib.suppress(ValueError):
                rec["json"] = json.loads(body)

        status, headers, payload = 404, {}, {"error": {"code": "NotFound", "message": "no fake route"}}
        for method, pattern, handler in self.routes:
            m = pattern.search(rec["host"] + rec["path"])  # routes match "host/path" (no query)
            if method == request.method and m:
                with self._lock:
                    status, headers, payload = handler(self, request, m, rec)
                break
        else:
            rec["unhandled"] = True
        rec["status"] = status
        with self._lock:
            self.requests.append(rec)
        return self._build_response(request, status, headers, payload, **kwargs)

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _request_body(request) -> bytes:
        # rest.HttpRequest exposes .content; legacy HttpRequest exposes .data / .body
        data = getattr(request, "content", None)
        if data is None:
            data = getattr(request, "data", None)
        if data is None:
            return b""
        if hasattr(data, "read"):
            pos = data.tell() if hasattr(data, "tell") else None
            raw = data.read()
            if pos is not None and hasattr(data, "seek"):
                data.seek(pos)
            data = raw
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        if isinstance(data, (dict, list)):
            return json.dumps(data).encode()
        # generators / iterables (chunked uploads)
        return b"".join(c if isinstance(c, bytes) else str(c).encode() for c in data)

    def _build_response(self, request, status: int, headers: dict[str, str], payload: Any, **kwargs):
        hdrs = {
            "Date": formatdate(usegmt=True),
            "x-ms-request-id": "00000000-0000-0000-0000-0000000000aa",
        }
        if isinstance(payload, (dict, list)):
            content = json.dumps(payload).encode()
            hdrs["Content-Type"] = "application/json; charset=utf-8"
        elif isinstance(payload, str):
            content = payload.encode()
        elif payload is None:
            content = b""
        else:
            content = payload
        hdrs.update(headers)
        hdrs.setdefault("Content-Length", str(len(content)))

        resp = requests.Response()
        resp.status_code = status
        resp.reason = HTTPStatus(status).phrase
        resp.headers = CaseInsensitiveDict(hdrs)
        resp._content = content
        resp._content_consumed = True  # so iter_content() (stream=True downloads) replays _content
        resp.raw = io.BytesIO(content)
        resp.url = request.url
        resp.encoding = "utf-8"

        if hasattr(request, "content"):  # azure.core.rest.HttpRequest
            rest_resp = RestRequestsTransportResponse(request=request, internal_response=resp)
            if not kwargs.get("stream"):
                rest_resp.read()
            return rest_resp
        return RequestsTransportResponse(request, resp)

    def route(self, method: str, pattern: str):
        def deco(fn: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern, re.I), fn))
            return fn

        return deco


# --------------------------------------------------------------------------------------
# Canned ARM / blob behaviour
# --------------------------------------------------------------------------------------
WORKSPACE_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
WS_PREFIX = r"^management\.azure\.com" + re.escape(WORKSPACE_ID)
NOW = "2024-01-01T00:00:00.000000+00:00"
LIST_VIEW_TYPES: dict[str, Callable[[bool], bool]] = {  # listViewType (lowercased) -> which isArchived it lists
    "activeonly": lambda archived: not archived,
    "archivedonly": lambda archived: archived,
    "all": lambda archived: True,
}


def _system_data() -> dict[str, str]:
    return {
        "createdAt": NOW,
        "createdBy": "fake@example.com",
        "createdByType": "User",
        "lastModifiedAt": NOW,
        "lastModifiedBy": "fake@example.com",
        "lastModifiedByType": "User",
    }


def _blob_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    h = {
        "ETag": '"0x8DC0000000000000"',
        "Last-Modified": formatdate(usegmt=True),
        "x-ms-version": "2025-01-05",
        "x-ms-request-server-encrypted": "true",
    }
    h.update(extra or {})
    return h


def install_routes(t: FakeTransport) -> None:
    @t.route("GET", WS_PREFIX + r"$")
    def workspace_get(t, req, m, rec):
        return (
            200,
            {},
            {
                "id": WORKSPACE_ID,
                "name": WS,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": "westeurope",
                "kind": "Default",
                "properties": {
                    "workspaceId": "22222222-2222-2222-2222-222222222222",
                    "storageAccount": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}",  # noqa: E501
                    "discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/x",
                },
                "systemData": _system_data(),
            },
        )

    def _datastore_json(name: str) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/datastores/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "isDefault": True,
                "accountName": ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
                "credentials": {"credentialsType": "AccountKey"},
                "tags": {},
                "properties": {},
            },
            "systemData": _system_data(),
        }

    @t.route("GET", WS_PREFIX + r"/datastores$")  # get_default() lists with isDefault=true
    def datastore_list(t, req, m, rec):
        return 200, {}, {"value": [_datastore_json("workspaceblobstore")]}

    @t.route("GET", WS_PREFIX + r"/datastores/(?P<name>[^/]+)$")
    def datastore_get(t, req, m, rec):
        return 200, {}, _datastore_json(m["name"])

    @t.route("POST", WS_PREFIX + r"/datastores/(?P<name>[^/]+)/listSecrets$")
    def datastore_secrets(t, req, m, rec):
        return 200, {}, {"secretsType": "AccountKey", "key": FAKE_ACCOUNT_KEY}

    # ---- model containers / versions ----
    def _model_json(name: str, version: str, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/models/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            # The real service always returns flavors (the SDK crashes on flavors=None) and fills stage.
            "properties": {
                "flavors": {},
                "stage": "Development",
                "isArchived": False,
                "isAnonymous": False,
                **props,
                "provisioningState": "Succeeded",
            },
            "systemData": _system_data(),
        }

    @t.route("GET", WS_PREFIX + r"/models/(?P<name>[^/]+)/versions$")
    def model_versions_list(t, req, m, rec):
        # listViewType decides whether archived versions are listed; the service (and models.list) default to
        # ActiveOnly, which skips them.
        view = rec["query"].get("listViewType", "ActiveOnly").lower()
        if view not in LIST_VIEW_TYPES:
            return 400, {}, {"error": {"code": "UserError", "message": f"Invalid listViewType {view!r}"}}
        items = [
            v
            for (n, _), v in t.models.items()
            if n == m["name"] and LIST_VIEW_TYPES[view](v["properties"]["isArchived"])
        ]
        items.sort(key=lambda v: int(v["name"]), reverse=True)  # newest first, like $orderBy=createdtime desc
        top = rec["query"].get("$top")
        if top:
            items = items[: int(top)]
        return 200, {}, {"value": items}

    @t.route("GET", WS_PREFIX + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
    def model_version_get(t, req, m, rec):
        obj = t.models.get((m["name"], m["version"]))
        if obj is None:
            return 404, {"x-ms-error-code": "UserError"}, {"error": {"code": "UserError", "message": "Not found"}}
        return 200, {}, obj

    @t.route("PUT", WS_PREFIX + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
    def model_version_put(t, req, m, rec):
        if t.fail_model_put:
            return 500, {}, {"error": {"code": "InternalServerError", "message": "injected failure"}}
        props = (rec["json"] or {}).get("properties", {})
        existing = t.models.get((m["name"], m["version"]))
        if existing is not None and existing["properties"].get("modelUri") != props.get("modelUri"):
            # A version's files are immutable: a PUT may change its tags, stage or archived state, not its path.
            return 400, {}, {"error": {"code": "UserError", "message": "Asset paths cannot be updated."}}
        obj = _model_json(m["name"], m["version"], props)
        t.models[(m["name"], m["version"])] = obj
        return 201, {}, obj

    @t.route("GET", WS_PREFIX + r"/models/(?P<name>[^/]+)$")
    def model_container_get(t, req, m, rec):
        versions = [v for (n, v) in t.models if n == m["name"]]
        if not versions:
            return 404, {}, {"error": {"code": "UserError", "message": "Not found"}}
        return (
            200,
            {},
            {
                "id": f"{WORKSPACE_ID}/models/{m['name']}",
                "name": m["name"],
                "properties": {"latestVersion": max(versions), "nextVersion": str(int(max(versions)) + 1)},
                "systemData": _system_data(),
            },
        )

    # ---- Azure Blob Storage (https://<account>.blob.core.windows.net/<container>/<blob>) ----
    BLOB = rf"^{ACCOUNT}\.blob\.core\.windows\.net/(?P<container>[^/]+)/(?P<blob>.+)$"

    @t.route("HEAD", BLOB)
    def blob_props(t, req, m, rec):
        b = t.blobs.get(f"{m['container']}/{m['blob']}")
        if b is None:
            return 404, _blob_headers({"x-ms-error-code": "BlobNotFound"}), None
        meta = {f"x-ms-meta-{k}": v for k, v in b["metadata"].items()}
        return 200, _blob_headers({"Content-Length": str(len(b["data"])), "x-ms-blob-type": "BlockBlob", **meta}), None

    @t.route("PUT", BLOB)
    def blob_put(t, req, m, rec):
        key = f"{m['container']}/{m['blob']}"
        if rec["query"].get("comp") == "metadata":
            meta = {k[len("x-ms-meta-") :]: v for k, v in rec["headers"].items() if k.lower().startswith("x-ms-meta-")}
            t.blobs.setdefault(key, {"data": b"", "metadata": {}})["metadata"] = meta
            return 200, _blob_headers(), None
        t.blobs[key] = {"data": rec["body"], "metadata": {}}
        md5 = rec["headers"].get("Content-MD5")
        return 201, _blob_headers({"Content-MD5": md5} if md5 else {}), None

    @t.route(
        "GET", rf"^{ACCOUNT}\.blob\.core\.windows\.net/(?P<container>[^/]+)/?$"
    )  # container-level ops (list blobs etc.), not expected here
    def container_get(t, req, m, rec):
        return 404, _blob_headers({"x-ms-error-code": "ContainerNotFound"}), None


# --------------------------------------------------------------------------------------
# Wiring
# --------------------------------------------------------------------------------------
def patch_blob_storage(transport: FakeTransport, monkeypatch) -> None:
    """azure-ai-ml builds BlobServiceClient(account_url, credential) itself with NO transport kwarg
    (azure/ai/ml/_artifacts/_blob_storage_helper.py), so inject ours there."""
    import azure.ai.ml._artifacts._blob_storage_helper as bsh
    from azure.storage.blob import BlobServiceClient, ContainerClient

    class _BSC(BlobServiceClient):
        def __init__(self, *a, **kw):
            kw.setdefault("transport", transport)
            super().__init__(*a, **kw)

    class _CC(ContainerClient):
        @classmethod
        def from_container_url(cls, container_url, credential=None, **kw):
            kw.setdefault("transport", transport)
            return ContainerClient.from_container_url.__func__(cls, container_url, credential, **kw)

    monkeypatch.setattr(bsh, "BlobServiceClient", _BSC)
    monkeypatch.setattr(bsh, "ContainerClient", _CC)


def block_real_network(monkeypatch) -> None:
    """Any attempt to reach a real host fails the test: the fakes must answer everything."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f"real network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
