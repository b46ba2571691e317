"""What both deployments serve: the production version of the registered model, as one artifact.

Locally the artifact is the embedded registry's folder; in prod the real-time container and the batch job
fetch the same registered version from Azure ML by its URI (`azureml:<name>:<version>`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DeploymentError(RuntimeError):
    """A deployment cannot be made or reached; the message says what to do."""


@dataclass(frozen=True)
class ServedArtifact:
    model: str
    version: str
    sha256: str
    model_uri: str  # azureml:<name>:<version> (what Azure ML jobs and the container fetch)
    path: Path | None = None  # the files on this machine, when they are needed here
    tags: dict[str, str] = field(default_factory=dict)  # the registered version's tags (its lineage)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
            "model_uri": self.model_uri,
            "path": str(self.path) if self.path else None,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict) -> ServedArtifact:
        return cls(
            model=data["model"],
            version=data["version"],
            sha256=data["sha256"],
            model_uri=data["model_uri"],
            path=Path(data["path"]) if data.get("path") else None,
            tags=dict(data.get("tags") or {}),
        )


@dataclass(frozen=True)
class RealtimeDeployment:
    """What `deploy` made of an artifact: where the endpoint answers and what it serves."""

    url: str  # the OpenAI API's base URL, ending in /v1
    model: str
    version: str
    sha256: str
    updated: bool  # False when the endpoint already served this version
    target: str  # what serves it, in words (a local server process, an Azure Container App)


@dataclass(frozen=True)
class ServedVersion:
    """What the endpoint serves right now; every field None when it is down."""

    model: str | None = None
    version: str | None = None
    sha256: str | None = None
    url: str | None = None


def production_artifact(registry, name: str, with_local_files: bool) -> ServedArtifact:
    """The production version of `name`; `with_local_files` also makes its files available on this machine."""
    version = registry.production(name)
    if version is None:
        raise DeploymentError(
            f"No version of {name} is in production yet, so there is nothing to serve. Promote one with "
            "`waldinger model promote` (or materialize waldinger/model/production_model)."
        )
    return ServedArtifact(
        model=name,
        version=version.version,
        sha256=version.sha256,
        model_uri=f"azureml:{name}:{version.version}",
        path=registry.local_path(version) if with_local_files else None,
        tags=dict(version.tags),
    )
