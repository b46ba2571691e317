"""Asset keys and tables of the training domain, as constants shared by the assets, the CLI, the demo seed and the
tests."""

LABELED_EXAMPLES_TABLE = ("WALDINGER", "LLM", "LABELED_EXAMPLES")  # reviewed examples: the training data
TRAINING_DATASET_KEY = ["waldinger", "training", "training_dataset"]
FINE_TUNED_MODEL_KEY = ["waldinger", "training", "fine_tuned_model"]
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
