"""An on-disk model registry with Azure ML Model Registry's semantics: immutable numbered versions with tags
and properties, a production stage, archiving, and a promotion history.

Layout: `<root>/<model name>/<version>/artifact/...` plus `version.json`; `<root>/<model name>/promotions.jsonl`.
A version appears only once complete (copied into a hidden folder, then renamed into place), so a failed
registration leaves no version behind. Registering the same bytes again returns the existing version: the
artifact's sha256 is a tag and decides. An archived version stays listed (stage Archived) and keeps its number and
its bytes: registering those bytes again returns it, still archived, and promoting it is refused until it is
restored.

A version's evaluation (its metrics and the dataset version they were measured on) is stored in its version.json
by `record_evaluation`; it can be recorded again (re-evaluation), and registering the same bytes keeps it. Every
promotion entry records the metrics the version had when it was promoted, and an override of the evaluation gate
records its reason and the gate's failed reasons.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from resources.model_versions import (
    ARCHIVED,
    NONE_STAGE,
    PRODUCTION,
    SHA256_TAG,
    ModelVersion,
    checked_evaluation,
)
from waldinger_runtime.artifact import artifact_sha256, validate_artifact

__all__ = [  # ModelVersion and the stage names live in resources.model_versions; importing them from here works too
    "ARCHIVED",
    "NONE_STAGE",
    "PRODUCTION",
    "SHA256_TAG",
    "EmbeddedModelRegistry",
    "ModelVersion",
    "RegistryError",
]


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says why and what to do."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class EmbeddedModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        with open(model_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield model_dir
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, version_dir: Path) -> ModelVersion:
        entry = version_dir / "version.json"
        try:
            version = ModelVersion(**json.loads(entry.read_text(encoding="utf-8")))
            if version.metrics:
                metrics, _ = checked_evaluation(version.metrics, version.evaluated_on or "")
                version = dataclasses.replace(version, metrics=metrics)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as error:
            raise RegistryError(corrupted_entry_message(entry, error)) from error
        if version.version != version_dir.name:
            raise RegistryError(corrupted_entry_message(entry, f"it describes version {version.version!r}"))
        if not version.sha256:
            raise RegistryError(corrupted_entry_message(entry, f"its {SHA256_TAG} tag is missing"))
        return version

    def _write(self, version_dir: Path, version: ModelVersion) -> None:
        temporary = version_dir / ".version.json.tmp"
        temporary.write_text(json.dumps(version.to_json(), indent=2, sort_keys=True))
        os.replace(temporary, version_dir / "version.json")

    def list_versions(self, name: str) -> list[ModelVersion]:
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        versions = [self._read(d) for d in model_dir.iterdir() if d.is_dir() and d.name.isdigit()]
        return sorted(versions, key=lambda v: int(v.version))

    def get(self, name: str, version: str) -> ModelVersion:
        version_dir = self.root / name / str(version)
        if not (version_dir / "version.json").is_file():
            known = ", ".join(v.version for v in self.list_versions(name)) or "none"
            raise RegistryError(f"Model {name!r} has no version {version!r} (registered versions: {known}).")
        return self._read(version_dir)

    def register(
        self, name: str, artifact_dir: Path, tags: dict[str, str], properties: dict[str, str]
    ) -> tuple[ModelVersion, bool]:
        """Registers the artifact as a new version, or returns the version that holds the same bytes.
        Returns (version, created)."""
        validate_artifact(artifact_dir)
        sha256 = artifact_sha256(artifact_dir)
        with self._locked(name) as model_dir:
            for existing in self.list_versions(name):
                if existing.sha256 == sha256:
                    return existing, False
            number = str(max((int(v.version) for v in self.list_versions(name)), default=0) + 1)
            staging = model_dir / f".{number}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                shutil.copytree(artifact_dir, staging / "artifact", ignore=shutil.ignore_patterns(".*"))
                if artifact_sha256(staging / "artifact") != sha256:
                    raise RegistryError(f"{artifact_dir} changed while it was being registered; register it again.")
                version = ModelVersion(
                    name=name,
                    version=number,
                    path=str(model_dir / number / "artifact"),
                    tags={**{k: str(v) for k, v in tags.items()}, SHA256_TAG: sha256},
                    properties={k: str(v) for k, v in properties.items()},
                    created_at=_now(),
                )
                self._write(staging, version)
                os.rename(staging, model_dir / number)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return version, True

    def local_path(self, version: ModelVersion) -> Path:
        """A local folder holding the version's files (here: the registry's own immutable copy)."""
        return Path(version.path)

    def production(self, name: str) -> ModelVersion | None:
        return next((v for v in self.list_versions(name) if v.stage == PRODUCTION), None)

    def record_evaluation(
        self, name: str, version: str, metrics: Mapping[str, float], evaluated_on: str
    ) -> ModelVersion:
        """Stores the version's metrics and the dataset version they were measured on, replacing an earlier
        evaluation of it; the version keeps its stage, tags and bytes."""
        checked, dataset = evaluation_or_error(metrics, evaluated_on)
        with self._locked(name) as model_dir:
            target = self.get(name, version)
            ensure_evaluable(target)
            evaluated = dataclasses.replace(target, metrics=checked, evaluated_on=dataset)
            self._write(model_dir / evaluated.version, evaluated)
            return evaluated

    def promote(
        self,
        name: str,
        version: str,
        run_id: str | None = None,
        reason: str = "promote",
        gate_failures: Sequence[str] = (),
        override_reason: str | None = None,
    ) -> ModelVersion:
        """Makes `version` the one production version; the previous one goes back to stage None. The registry
        itself does not judge metrics (the evaluation gate does, before it calls this); it records them, and
        `gate_failures` with `override_reason` when the gate was overridden."""
        with self._locked(name) as model_dir:
            target = self.get(name, version)
            ensure_promotable(target)
            previous = self.production(name)
            if previous and previous.version != target.version:
                self._write(model_dir / previous.version, _with_stage(previous, NONE_STAGE))
            promoted = _with_stage(target, PRODUCTION)
            self._write(model_dir / target.version, promoted)
            record = {
                "at": _now(),
                "version": target.version,
                "previous": previous.version if previous else None,
                "run_id": run_id,
                "reason": reason,
                "artifact_sha256": target.sha256,
                "metrics": target.metrics,
                "evaluated_on": target.evaluated_on,
                "gate_failures": list(gate_failures),
                "override_reason": override_reason,
            }
            with open(model_dir / "promotions.jsonl", "a", encoding="utf-8") as history:
                history.write(json.dumps(record) + "\n")
            return promoted

    def promotions(self, name: str) -> list[dict]:
        path = self.root / name / "promotions.jsonl"
        if not path.is_file():
            return []
        history = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                history.append(json.loads(line))
            except ValueError as error:
                raise RegistryError(
                    f"The promotion history {path} is corrupted at line {number} ({error}). The versions "
                    "themselves are intact; fix or delete that line (each line is one JSON promotion), then retry."
                ) from error
        return history

    def rollback(self, name: str, run_id: str | None = None) -> ModelVersion:
        """Promotes the version that was in production before the current one."""
        current, target = rollback_target(name, self.production(name), self.promotions(name))
        return self.promote(name, target, run_id=run_id, reason=f"rollback from {current.version}")

    def archive(self, name: str, version: str) -> ModelVersion:
        with self._locked(name) as model_dir:
            target = self.get(name, version)
            if target.stage == PRODUCTION:
                raise RegistryError(f"{name} version {version} is in production; promote another version first.")
            archived = _with_stage(target, ARCHIVED)
            self._write(model_dir / version, archived)
            return archived

    def restore(self, name: str, version: str) -> ModelVersion:
        """Makes an archived version promotable again (stage None); any other version is left as it is."""
        with self._locked(name) as model_dir:
            target = self.get(name, version)
            if target.stage != ARCHIVED:
                return target
            restored = _with_stage(target, NONE_STAGE)
            self._write(model_dir / version, restored)
            return restored


def corrupted_entry_message(entry: Path, problem: object) -> str:
    return (
        f"The registry entry {entry} is corrupted ({problem}); it was changed outside the registry. No version "
        f"was changed. Restore the file from a backup, or move the folder {entry.parent} out of the registry and "
        "register the artifact again (materialize waldinger/model/registered_model): the same bytes get a new "
        "version number."
    )


def ensure_promotable(version: ModelVersion) -> None:
    """The rule for archived versions, asked by both registries' promote and by promote_verified (before it
    downloads anything): an archived version is never promoted."""
    if version.stage == ARCHIVED:
        raise RegistryError(
            f"{version.name} version {version.version} is archived, so it cannot be promoted; promote another "
            f"version, or restore this one first (restore({version.name!r}, {version.version!r}) on the registry)."
        )


def evaluation_or_error(metrics: Mapping[str, float], evaluated_on: str) -> tuple[dict[str, float], str]:
    try:
        return checked_evaluation(metrics, evaluated_on)
    except ValueError as error:
        raise RegistryError(f"The evaluation was not recorded: {error}") from None


def ensure_evaluable(version: ModelVersion) -> None:
    """An archived version's evaluation is not recorded, in either registry: Azure ML's tag update would restore it
    (azure-ai-ml's PUT always sends isArchived false), and an archived version is not promoted anyway."""
    if version.stage == ARCHIVED:
        raise RegistryError(
            f"{version.name} version {version.version} is archived, so its evaluation is not recorded; restore it "
            f"first (restore({version.name!r}, {version.version!r}) on the registry), then evaluate it again."
        )


def rollback_target(name: str, current: ModelVersion | None, promotions: list[dict]) -> tuple[ModelVersion, str]:
    """(current production version, the version promoted before it), or a RegistryError saying why not."""
    if current is None:
        raise RegistryError(f"{name} has no production version to roll back from.")
    earlier = [p["version"] for p in promotions if p["version"] != current.version]
    if not earlier:
        raise RegistryError(f"{name} version {current.version} is the only version ever in production.")
    return current, earlier[-1]


def _with_stage(version: ModelVersion, stage: str) -> ModelVersion:
    return dataclasses.replace(version, stage=stage)
