"""Out-of-distribution detection: the class-conditional Mahalanobis distance of an image's
penultimate features (fc7) to the training images of its nearest class (Lee et al., 2018, "A
Simple Unified Framework for Detecting Out-of-Distribution Samples"). It beat max-softmax
and energy scores on the demo model (BENCHMARKS.md, "Trust").

The class means and one shared covariance come from training images. With fewer images than
fc7 has features the covariance is singular, so it is probabilistic PCA's (Tipping and
Bishop, 1999): the scatter's top directions exactly, the rest one isotropic variance. Its
inverse is then a few matrices of [features, COMPONENTS], small enough to live in the
exported graph. The threshold is set on held-out images, which the statistics never saw.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from modules.calibration import MIN_CALIBRATION_IMAGES

COMPONENTS = 64  # principal directions kept exactly
DIVERGED = (
    "the trained network answers NaN or infinity (training diverged: lower the learning rate)"
)


@dataclasses.dataclass(frozen=True)
class OodDetector:
    centre: np.ndarray  # [features] the mean of every training image
    class_means: np.ndarray  # [classes, features] relative to `centre`
    directions: np.ndarray  # [features, k] of the within-class scatter
    variances: np.ndarray  # [k] along `directions`
    residual_variance: float  # along every other direction
    threshold: float = float("inf")  # scores above it are flagged unknown
    keep: float = 1.0  # the share of held-out images the threshold keeps
    note: str = ""

    def scores(self, features: tf.Tensor) -> tf.Tensor:
        """[batch] sqrt(min over classes of the squared distance / features): higher for
        stranger images; the threshold, set on held-out images, gives the scale."""
        # In float64: the expansion below subtracts nearly equal large terms (the top
        # directions' share of |f - m|^2), which float32 leaves with a 1e-3 relative error.
        f = tf.cast(features, tf.float64) - self.centre
        means, directions = self.class_means, self.directions
        # The inverse covariance is I/s2 + V diag(w) V^T with w = 1/variances - 1/s2; each
        # term of |f - m|^2 expanded into matrix products, so no [batch, classes, features].
        s2 = self.residual_variance
        w = 1.0 / self.variances - 1.0 / s2
        projected, projected_means = tf.matmul(f, directions), means @ directions
        squared = (
            tf.reduce_sum(f * f, axis=1, keepdims=True)
            - 2.0 * tf.matmul(f, means, transpose_b=True)
            + np.sum(means * means, axis=1)
        ) / s2 + (
            tf.reduce_sum(w * projected * projected, axis=1, keepdims=True)
            - 2.0 * tf.matmul(w * projected, projected_means, transpose_b=True)
            + np.sum(w * projected_means * projected_means, axis=1)
        )
        nearest = tf.maximum(tf.reduce_min(squared, axis=1), 0.0)
        return tf.cast(tf.sqrt(nearest / f.shape[-1]), tf.float32)

    def flags(self, scores: tf.Tensor) -> tf.Tensor:
        """Above the threshold, or not a number."""
        return tf.logical_not(scores <= np.float32(self.threshold))


def fit_detector(features: np.ndarray, labels: np.ndarray, num_classes: int) -> OodDetector:
    """Class means and the shared PPCA covariance of training images' features; with fewer
    than two images, none (every score is then the plain distance to the origin)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if len(features) < 2:
        width = features.shape[1]
        return OodDetector(
            np.zeros(width), np.zeros((num_classes, width)), np.zeros((width, 0)), np.zeros(0), 1.0
        )
    centre = features.mean(axis=0)
    features = features - centre
    means = np.zeros((num_classes, features.shape[1]))
    for label in np.unique(labels):
        means[label] = features[labels == label].mean(axis=0)
    scatter = features - means[labels]
    # The scatter's singular values give the covariance's eigenvalues: no [features]^2 matrix.
    _, singular, vt = np.linalg.svd(scatter, full_matrices=False)
    eigenvalues = singular**2 / len(features)
    k = max(0, min(COMPONENTS, len(features) - num_classes, len(eigenvalues) - 1))
    # PPCA's maximum-likelihood isotropic variance: the mean of the remaining eigenvalues,
    # the zero ones beyond the image count included.
    residual = eigenvalues[k:].sum() / (features.shape[1] - k)
    residual = max(residual, 1e-6 * max(eigenvalues[0], 1e-12))
    return OodDetector(
        centre=centre,
        class_means=means,
        directions=vt[:k].T,
        variances=np.maximum(eigenvalues[:k], residual),
        residual_variance=float(residual),
    )


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
