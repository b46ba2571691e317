"""Model benchmarks; prints its figures: tiny model build time and size, registration time (new and
idempotent), load + greedy generate time.

Usage: .venv/bin/python benchmarks/bench_model.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    print(
        f"# bench_model on {platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    started = time.perf_counter()
    import torch  # noqa: F401 - timed apart from the build

    from resources.model_registry.embedded import EmbeddedModelRegistry
    from resources.model_source.tiny_model import build_tiny_model
    from waldinger_assets.model.inference_check import CHECK_MAX_NEW_TOKENS, load_and_answer
    from waldinger_runtime.artifact import artifact_files, artifact_sha256

    imports = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        artifact = build_tiny_model(scratch / "tiny")
        build = time.perf_counter() - started
        size = sum(p.stat().st_size for p in artifact_files(artifact))
        print(
            f"tiny model build: {build:.2f} s (+ {imports:.2f} s importing torch/transformers), "
            f"{size / 1024:.0f} KiB, sha256 {artifact_sha256(artifact)[:16]}…"
        )

        registry = EmbeddedModelRegistry(scratch / "registry")
        started = time.perf_counter()
        version, _ = registry.register("bench", artifact, {}, {})
        new = time.perf_counter() - started
        started = time.perf_counter()
        registry.register("bench", artifact, {}, {})
        again = time.perf_counter() - started
        print(
            f"registration (embedded registry): new version {new * 1000:.0f} ms, same bytes again {again * 1000:.0f} ms"
        )

        answers = [load_and_answer(Path(version.path)) for _ in range(3)]
        load = min(a.load_seconds for a in answers)
        fastest = min(answers, key=lambda a: a.generate_seconds)
        # Tokens/s from the tokens generated, not from the requested maximum: an answer may stop early at </s>.
        generated = len(fastest.token_ids)
        print(
            f"load (from_pretrained): {load * 1000:.0f} ms; greedy chat answer, max_new_tokens "
            f"{CHECK_MAX_NEW_TOKENS}, {generated} tokens generated: {fastest.generate_seconds * 1000:.0f} ms "
            f"({generated / fastest.generate_seconds:.0f} tokens/s, CPU); "
            f"same tokens every time: {len({a.token_ids for a in answers}) == 1}"
        )


if __name__ == "__main__":
    main()
