"""Daily batch inputs and outputs of the LLM pipeline."""
