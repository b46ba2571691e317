"""The schema history: every run's snapshot and drift report, kept as readable files so any past state can be
looked at (what changed when), plus the memo of canonical view SQL and the last drift alert sent.

An archive for people and for `waldinger drift`, not run state: runs pass snapshots and reports to each other
as asset values (resources.asset_values). Files are named `<UTC time>_<run id>.snapshot.json.gz` and
`.report.json`, so a directory listing is the history in order.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

CANONICAL_SQL_CACHE = "canonical_sql_cache.json"
# Bump when canonical_sql changes its output, so cached canonical forms are recomputed.
CANONICAL_SQL_VERSION = 2
LAST_ALERT = "last_drift_alert.json"
SNAPSHOT, REPORT = "snapshot", "report"
_SUFFIXES = {SNAPSHOT: ".snapshot.json.gz", REPORT: ".report.json"}


@dataclass(frozen=True)
class HistoryDocument:
    """One run's snapshot or drift report, as JSON text."""

    run_id: str
    kind: str  # snapshot or report
    text: str


@dataclass(frozen=True)
class SentAlert:
    """The last drift alert sent: which set of breaking changes (its fingerprint), from which run."""

    fingerprint: str
    run_link: str


class SchemaHistory:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def record(self, document: HistoryDocument) -> Path:
        """Keeps the document under `<UTC time>_<run id>`; returns its file."""
        if document.kind not in _SUFFIXES:
            raise ValueError(f"unknown history document kind {document.kind!r}; expected one of {sorted(_SUFFIXES)}")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"{stamp}_{document.run_id}{_SUFFIXES[document.kind]}"
        data = document.text.encode()
        self._write_atomically(path, gzip.compress(data, compresslevel=5) if path.suffix == ".gz" else data)
        return path

    def files(self, kind: str) -> list[Path]:
        """Every kept file of this kind, oldest first."""
        return sorted(self.directory.glob(f"*{_SUFFIXES[kind]}")) if self.directory.exists() else []

    def last_alert(self) -> SentAlert | None:
        try:
            state = json.loads((self.directory / LAST_ALERT).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not isinstance(state, dict) or not state.get("fingerprint"):
            return None
        return SentAlert(fingerprint=str(state["fingerprint"]), run_link=str(state.get("run_link", "")))

    def record_alert(self, alert: SentAlert | None) -> None:
        """Remembers the alert just sent (None: the breaking drift is gone, so the next one alerts again)."""
        state = {"fingerprint": alert.fingerprint, "run_link": alert.run_link} if alert else {}
        self._write_atomically(self.directory / LAST_ALERT, json.dumps(state, sort_keys=True).encode())

    def load_sql_cache(self) -> dict[str, str | None]:
        """Raw view text -> canonical SQL, from earlier snapshots (parsing 3,000 views takes seconds)."""
        try:
            cached = json.loads((self.directory / CANONICAL_SQL_CACHE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return cached.get("entries", {}) if cached.get("version") == CANONICAL_SQL_VERSION else {}

    def save_sql_cache(self, cache: dict[str, str | None]) -> None:
        document = {"version": CANONICAL_SQL_VERSION, "entries": cache}
        self._write_atomically(self.directory / CANONICAL_SQL_CACHE, json.dumps(document, sort_keys=True).encode())


def read_document(path: Path) -> str:
    """The JSON text of a kept file (snapshots are gzipped)."""
    raw = path.read_bytes()
    return gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
