"""The artifact types Kubeflow Pipelines' UI draws (frontend/src/components/viewers/
MetricsVisualizations.tsx, kubeflow/pipelines at 7b70c7b); it shows no tfx.* artifact.

- system.Metrics: every custom property is a scalar metric, in a table.
- system.ClassificationMetrics: the `confusionMatrix` property, {"annotationSpecs":
  [{"displayName": class}], "rows": [{"row": [counts]}]}, drawn as a matrix.
- system.Markdown and system.HTML: the file at the artifact's URI, rendered.
"""

from __future__ import annotations

from tfx.types import artifact, standard_artifacts


class Metrics(artifact.Artifact):
    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(artifact.Artifact):
    TYPE_NAME = "system.ClassificationMetrics"


class Markdown(standard_artifacts.String):
    """A file: its URI is the document itself, not a folder."""

    TYPE_NAME = "system.Markdown"


class HTML(standard_artifacts.String):
    """A file: its URI is the document itself, not a folder."""

    TYPE_NAME = "system.HTML"


KFP_UI_TYPES = (Metrics, ClassificationMetrics, Markdown, HTML)
