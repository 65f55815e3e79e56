"""The Trainer's executor for multi-worker training: replicas as local processes or as a
Kubeflow TFJob (executor.py)."""
