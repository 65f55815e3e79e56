"""RunReport: the run summary and report, and their Kubeflow UI artifacts."""
