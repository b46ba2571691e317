"""Blob Storage faked at the HTTP boundary, beyond the uploads tests/fakes/azure_ml.py answers: blobs kept in a
directory (so a job's subprocess and the Dagster side share them), and the download, list and delete routes the
Dagster Pipes context injector and message reader use."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from tests.fakes.azure_ml import ACCOUNT, FakeTransport, _blob_headers

ACCOUNT_URL = f"https://{ACCOUNT}.blob.core.windows.net"


# ---- Blob Storage in a directory ------------------------------------------------------------
class DirectoryBlobs(MutableMapping):
    """FakeTransport.blobs kept under a directory, so that a job's process and the test's process see the same
    Blob Storage: "container/blob" -> {"data": bytes, "metadata": dict}. Each file is written beside and then
    renamed into place, so the other process never reads half a blob. A stored blob read from here writes
    itself back when an item is set (the metadata PUT does `setdefault(key, ...)["metadata"] = ...`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for part in ("data", "metadata", "partial"):
            (self.root / part).mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path]:
        container, _, blob = key.partition("/")
        if not container or not blob:
            raise KeyError(key)
        name = quote(blob, safe="")  # one file per blob: "a" and "a/b" can both exist, as in Blob Storage
        return self.root / "data" / container / name, self.root / "metadata" / container / name

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.root / "partial" / uuid.uuid4().hex
        partial.write_bytes(data)
        os.replace(partial, path)

    def __getitem__(self, key: str) -> _StoredBlob:
        data_path, metadata_path = self._paths(key)
        try:
            data = data_path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            metadata = json.loads(metadata_path.read_text())
        except FileNotFoundError:
            metadata = {}
        return _StoredBlob(self, key, {"data": data, "metadata": metadata})

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        data_path, metadata_path = self._paths(key)
        self._write(metadata_path, json.dumps(dict(value.get("metadata") or {})).encode())
        self._write(data_path, bytes(value["data"]))

    def __delitem__(self, key: str) -> None:
        data_path, metadata_path = self._paths(key)
        try:
            data_path.unlink()
        except FileNotFoundError:
            raise KeyError(key) from None
        metadata_path.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        for container in sorted((self.root / "data").iterdir()):
            for path in sorted(container.iterdir()):
                yield f"{container.name}/{unquote(path.name)}"

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def setdefault(self, key: str, default: dict[str, Any]) -> _StoredBlob:
        if key not in self:
            self[key] = default
        return self[key]


class _StoredBlob(dict):
    def __init__(self, store: DirectoryBlobs, key: str, value: dict[str, Any]) -> None:
        super().__init__(value)
        self._store, self._key = store, key

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        self._store[self._key] = dict(self)


class RequestLog(list):
    """FakeTransport.requests that also appends each request (method, host, path, query, status) to a JSONL
    file: how the test process learns what a job's process asked Blob Storage."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def append(self, recorded: dict[str, Any]) -> None:
        super().append(recorded)
        line = {name: recorded.get(name) for name in ("method", "host", "path", "query", "status")}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def _route_first(t: FakeTransport, method: str, pattern: str):
    """Registers ahead of tests/fakes/azure_ml.py's routes: its catch-all container GET answers 404."""

    def deco(fn):
        t.routes.insert(0, (method, re.compile(pattern, re.I), fn))
        return fn

    return deco


def install_blob_routes(t: FakeTransport) -> None:
    """Blob Storage beyond uploads (tests/fakes/azure_ml.py answers HEAD and PUT): download, list, delete."""
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
