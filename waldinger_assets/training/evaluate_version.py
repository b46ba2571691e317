"""Runs a registered version over the eval split through the batch deployment's job (Pipes: the local
subprocess, or the Azure ML cluster in prod) and scores its answers (waldinger_assets.training.evaluation)."""

import time

from resources.batch_files import BatchFilesResource
from resources.serving import BatchComputeResource
from resources.serving.artifacts import ServedArtifact
from waldinger_assets.training.evaluation import (
    Evaluation,
    eval_requests,
    evaluate_results,
    read_results,
    requests_sha256,
    write_requests,
)


def evaluate_registered_version(
    context,
    *,
    registry,
    version,
    eval_records: list[dict],
    batch_compute: BatchComputeResource,
    batch_files: BatchFilesResource,
) -> tuple[Evaluation, dict]:
    """The version's evaluation on `eval_records`, and the job's figures (with `eval_seconds`)."""
    artifact = ServedArtifact(
        model=version.name,
        version=version.version,
        sha256=version.sha256,
        model_uri=f"azureml:{version.name}:{version.version}",
        path=registry.local_path(version) if batch_compute.needs_local_files() else None,
    )
    requests = eval_requests(eval_records, version.name)
    files = batch_files.job_files(context.run.run_id, f"eval{version.version}-{requests_sha256(requests)}")
    write_requests(files.requests_file, requests)
    started = time.perf_counter()
    figures = batch_compute.run_job(
        context,
        artifact=artifact,
        requests_file=files.requests_file,
        output_file=files.results_file,
        fingerprint=f"{version.name}:{version.version}",
    )
    evaluation = evaluate_results(eval_records, read_results(files.results_file))
    return evaluation, {**figures, "eval_seconds": round(time.perf_counter() - started, 2)}
