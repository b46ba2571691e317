"""The Pulumi program for the Azure stack the pipeline runs on, and its policy pack."""
