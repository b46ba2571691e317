"""Pulumi policy pack: mandatory cost guardrails for the Azure stack (see PulumiPolicy.yaml)."""
