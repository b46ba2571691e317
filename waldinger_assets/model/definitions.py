"""The model domain's definitions: the source artifact, the registered version with its checks, production."""

from dagster import Definitions

from waldinger_assets.model.assets import (
    artifact_hash_matches,
    evaluation_on_the_eval_split,
    model_loads_and_answers_deterministically,
    model_source,
    production_model,
    registered_model,
)
from waldinger_assets.model.jobs import evaluate_model_job, promote_model_job, register_model_job

defs = Definitions(
    assets=[model_source, registered_model, production_model],
    asset_checks=[artifact_hash_matches, model_loads_and_answers_deterministically, evaluation_on_the_eval_split],
    jobs=[register_model_job, promote_model_job, evaluate_model_job],
)
