"""The Kubeflow path: the compiled spec, the task entry point in the image, the KFP client."""
