"""Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") and the
expected calibration error it is judged by.

One scalar T divides the logits before the softmax: the predicted class never changes, only
how sure the model says it is. T is fitted on labelled images the reported metrics are not
computed on (the Trainer's held-out slice), by the negative log-likelihood plus a standard
normal prior on log T. Without the prior a held-out slice the network gets all right (a few
dozen images often is) pulls T to 0, which answers every image with a score of 1.0000; with
it T moves from 1 only as far as the images show it should.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize, special

# Fewer held-out images than this leave the temperature at 1: one wrong image would move it.
MIN_CALIBRATION_IMAGES = 20
BINS = 15  # Guo et al.'s equal-width confidence bins
# Searched on log T: from far sharper to far softer than the network's own softmax.
_LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
LOG_T_PRIOR_SD = 1.0  # the prior's standard deviation of log T


@dataclasses.dataclass(frozen=True)
class Temperature:
    value: float  # the logits are divided by it; 1: the network's own softmax
    images: int  # held-out images it was fitted on
    note: str  # how it was set, for the run summary


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, prior_sd: float = LOG_T_PRIOR_SD
) -> Temperature:
    """The T of highest posterior under softmax(logits / T) for integer `labels` and a
    normal prior on log T of standard deviation `prior_sd` (inf: the likelihood alone); 1
    with fewer than MIN_CALIBRATION_IMAGES images."""
    count = len(labels)
    if count < MIN_CALIBRATION_IMAGES:
        return Temperature(
            1.0,
            count,
            f"not calibrated: {count} held-out images, fewer than the "
            f"{MIN_CALIBRATION_IMAGES} a temperature needs; raise calibration_fraction or "
            "add images",
        )
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)

    def negative_log_posterior(log_t: float) -> float:  # per image
        log_p = special.log_softmax(logits / np.exp(log_t), axis=1)
        prior = log_t**2 / (2 * prior_sd**2)
        return -float(np.mean(log_p[np.arange(count), labels])) + prior / count

    found = optimize.minimize_scalar(negative_log_posterior, bounds=_LOG_T_BOUNDS, method="bounded")
    value = float(np.exp(found.x))
    return Temperature(value, count, f"temperature {value:.3f} fitted on {count} held-out images")


@dataclasses.dataclass(frozen=True)
class Reliability:
    """Per confidence bin: images, their mean confidence and their accuracy (NaN if empty)."""

    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @classmethod
    def from_sums(cls, sums: np.ndarray) -> Reliability:
        """From `bin_sums` (of one batch, or added up over many)."""
        counts, confidence, correct = np.asarray(sums, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cls(counts, confidence / counts, correct / counts)

    @property
    def expected_calibration_error(self) -> float:
        """sum over bins of |accuracy - confidence|, weighted by the bin's share of images."""
        total = self.counts.sum()
        if not total:
            return float("nan")
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(gaps * self.counts[filled]) / total)


def bin_sums(
    probabilities: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    bins: int = BINS,
) -> np.ndarray:
    """[3, bins]: per bin of top probability, (k/bins, (k+1)/bins] as Guo et al. bin, the
    weight of its images, of their confidence and of their correct answers. Sums add up."""
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(labels), -1)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    # A NaN answer (a diverged network) is wrong, with no confidence.
    answered = np.isfinite(probabilities).all(axis=1)
    confidence = np.where(answered, np.nan_to_num(probabilities).max(axis=1), 0.0)
    correct = (answered & (probabilities.argmax(axis=1) == labels)).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return np.stack(
        [
            np.bincount(index, weights, minlength=bins),
            np.bincount(index, weights * confidence, minlength=bins),
            np.bincount(index, weights * correct, minlength=bins),
        ]
    )


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    return Reliability.from_sums(bin_sums(probabilities, labels, bins=bins))
