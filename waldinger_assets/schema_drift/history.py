"""Every run's snapshot and drift report, kept on disk so any past state stays readable: what changed when.

Files are named `<UTC time>_<run id>.snapshot.json.gz` and `.report.json`, so a directory listing is the
history in order.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path

from waldinger_assets.schema_drift.model import Snapshot

CANONICAL_SQL_CACHE = "canonical_sql_cache.json"
# Bump when canonical_sql changes its output, so cached canonical forms are recomputed.
# 2: redundant parentheses inside AND/OR chains and around columns, literals and calls are dropped.
CANONICAL_SQL_VERSION = 2


class SchemaHistory:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _stem(self, run_id: str) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}_{run_id}"

    def _write_atomically(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def save_snapshot(self, snapshot: Snapshot, run_id: str) -> Path:
        path = self.directory / f"{self._stem(run_id)}.snapshot.json.gz"
        self._write_atomically(path, gzip.compress(snapshot.to_text().encode(), compresslevel=5))
        return path

    def save_report(self, report: dict, run_id: str) -> Path:
        path = self.directory / f"{self._stem(run_id)}.report.json"
        self._write_atomically(path, json.dumps(report, indent=1, ensure_ascii=False).encode())
        return path

    def _find(self, run_id: str, suffix: str) -> Path | None:
        matches = sorted(self.directory.glob(f"*_{run_id}{suffix}")) if self.directory.exists() else []
        return matches[-1] if matches else None

    def snapshot_for_run(self, run_id: str) -> Snapshot | None:
        path = self._find(run_id, ".snapshot.json.gz")
        return load_snapshot(path) if path else None

    def report_for_run(self, run_id: str) -> dict | None:
        path = self._find(run_id, ".report.json")
        return json.loads(path.read_text()) if path else None

    def latest_report(self) -> dict | None:
        paths = sorted(self.directory.glob("*.report.json")) if self.directory.exists() else []
        return json.loads(paths[-1].read_text()) if paths else None

    def read_state(self, name: str) -> dict:
        try:
            return json.loads((self.directory / f"{name}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write_state(self, name: str, state: dict) -> None:
        self._write_atomically(self.directory / f"{name}.json", json.dumps(state, sort_keys=True).encode())

    def snapshots(self) -> list[Path]:
        return sorted(self.directory.glob("*.snapshot.json.gz")) if self.directory.exists() else []

    def latest_snapshot(self) -> Snapshot | None:
        paths = self.snapshots()
        return load_snapshot(paths[-1]) if paths else None

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


def load_snapshot(path: Path) -> Snapshot:
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    return Snapshot.from_json(json.loads(text))
