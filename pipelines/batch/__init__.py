"""Batch scoring: `alexnet-tfx predict-batch`, a Beam job around RunInference."""
