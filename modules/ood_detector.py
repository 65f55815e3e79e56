"""Out-of-distribution detection: the class-conditional Mahalanobis distance (Lee et al.,
2018, "A Simple Unified Framework for Detecting Out-of-Distribution Samples") of an image's
first-convolution statistics to the training images of its nearest class.

The features are conv1's mean response per channel (96 numbers for the canonical network):
the colour, edge and texture content of the image. A network trained on a few hundred images
keeps in its deep features (fc7) only what separates its classes, not what its images look
like; on the demo model fc7's distance told foreign photos from eval images no better than
chance could by much (AUROC 0.59), conv1's 0.91, max-softmax 0.83 (BENCHMARKS.md, "Trust").

The class means and one shared covariance come from images trained on. With more images than
features the sample covariance is well estimated; a ridge of RIDGE times its mean variance
keeps it invertible otherwise. The threshold is set on held-out images, which the statistics
never saw.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from modules.calibration import MIN_CALIBRATION_IMAGES

RIDGE = 1e-3  # of the covariance's mean variance, added to its diagonal
OOD_METHOD = "mahalanobis_conv1_means"  # as the training record names it
DIVERGED = (
    "the trained network answers NaN or infinity (training diverged: lower the learning rate)"
)


@dataclasses.dataclass(frozen=True)
class OodDetector:
    class_means: np.ndarray  # [classes, features]
    precision: np.ndarray  # [features, features] the shared covariance's inverse
    threshold: float = float("inf")  # scores above it are flagged unknown
    keep: float = 1.0  # the share of held-out images the threshold keeps
    note: str = ""

    def scores(self, features: tf.Tensor) -> tf.Tensor:
        """[batch] sqrt(min over classes of the squared distance / features): higher for
        stranger images; the threshold, set on held-out images, gives the scale."""
        # float64: a few features, and distances that must not move with the batch size.
        differences = tf.cast(features, tf.float64)[:, None, :] - self.class_means
        squared = tf.einsum("bcf,fg,bcg->bc", differences, self.precision, differences)
        nearest = tf.maximum(tf.reduce_min(squared, axis=1), 0.0)
        return tf.cast(tf.sqrt(nearest / self.precision.shape[0]), tf.float32)

    def flags(self, scores: tf.Tensor) -> tf.Tensor:
        """Above the threshold, or not a number."""
        return tf.logical_not(scores <= np.float32(self.threshold))


def fit_detector(features: np.ndarray, labels: np.ndarray, num_classes: int) -> OodDetector:
    """Class means and the shared covariance of training images' features; a class without
    images gets the mean of all."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    width = features.shape[1]
    if len(features) < 2:
        return OodDetector(np.zeros((num_classes, width)), np.eye(width))
    means = np.tile(features.mean(axis=0), (num_classes, 1))
    for label in np.unique(labels):
        means[label] = features[labels == label].mean(axis=0)
    scatter = features - means[labels]
    covariance = scatter.T @ scatter / len(features)
    ridge = RIDGE * max(np.trace(covariance) / width, 1e-12)
    return OodDetector(means, np.linalg.inv(covariance + ridge * np.eye(width)))


def set_threshold(
    detector: OodDetector, held_out: np.ndarray, training: np.ndarray, keep: float
) -> OodDetector:
    """The threshold below which `keep` of the held-out images' scores fall; with too few
    held-out images, the training images' (which the detector has seen: it flags less)."""
    held_out_scores = detector.scores(held_out).numpy()
    training_scores = detector.scores(training).numpy()
    if not np.isfinite(np.r_[held_out_scores, training_scores]).all():
        return dataclasses.replace(
            detector, threshold=0.0, keep=keep, note=f"flags every image: {DIVERGED}"
        )
    if len(held_out_scores) >= MIN_CALIBRATION_IMAGES:
        scores = held_out_scores
        note = f"keeps {keep:.0%} of {len(scores)} held-out images as known"
    else:
        scores = training_scores
        note = (
            f"keeps {keep:.0%} of {len(scores)} training images as known: only "
            f"{len(held_out_scores)} were held out, and images trained on look more familiar, "
            "so it flags fewer than a held-out threshold would"
        )
    threshold = float(np.quantile(scores, keep, method="higher"))
    return dataclasses.replace(detector, threshold=threshold, keep=keep, note=note)
