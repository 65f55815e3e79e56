"""Run history from ML Metadata: one run's lineage and summary, and the list of past runs."""
