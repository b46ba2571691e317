"""The training domain's definitions: the labeled examples table, the training dataset, the fine-tuned model."""

from dagster import Definitions

from waldinger_assets.training.assets import fine_tuned_model, labeled_examples_table, training_dataset

defs = Definitions(assets=[labeled_examples_table, training_dataset, fine_tuned_model])
