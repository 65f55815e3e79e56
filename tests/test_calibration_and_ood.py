"""Temperature scaling, the calibration error and the Mahalanobis detector, on numbers whose
answers are known."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.calibration import MIN_CALIBRATION_IMAGES, fit_temperature, reliability
from modules.ood_detector import fit_detector, set_threshold


def overconfident(count, temperature, seed=0):
    """Logits whose labels are drawn from softmax(logits / temperature): T is the answer."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(count, 3))
    probabilities = np.exp(logits / temperature)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in probabilities])
    return logits, labels


def test_the_temperature_that_made_the_labels_is_found():
    logits, labels = overconfident(4000, temperature=2.5)
    fitted = fit_temperature(logits, labels)
    assert fitted.value == pytest.approx(2.5, rel=0.1)
    assert fitted.images == 4000 and "fitted on 4000 held-out images" in fitted.note


def test_calibration_lowers_the_error_and_keeps_every_answer():
    logits, labels = overconfident(3000, temperature=3.0, seed=1)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    before = softmax(logits)
    after = softmax(logits / fit_temperature(logits[:1500], labels[:1500]).value)
    ece_before = reliability(before[1500:], labels[1500:]).expected_calibration_error
    ece_after = reliability(after[1500:], labels[1500:]).expected_calibration_error
    assert ece_after < 0.5 * ece_before
    assert (before.argmax(axis=1) == after.argmax(axis=1)).all()


def test_too_few_held_out_images_leave_the_temperature_at_one():
    logits, labels = overconfident(MIN_CALIBRATION_IMAGES - 1, temperature=3.0)
    fitted = fit_temperature(logits, labels)
    assert fitted.value == 1.0 and fitted.images == MIN_CALIBRATION_IMAGES - 1
    assert f"fewer than the {MIN_CALIBRATION_IMAGES}" in fitted.note


def test_reliability_bins_count_every_image_once():
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.5, 0.5], [0.2, 0.8]])
    labels = np.array([0, 1, 0, 1])
    bins = reliability(probabilities, labels, bins=10)
    assert bins.counts.sum() == 4
    # Bins are (k/10, (k+1)/10]: 0.95 in bin 9, 0.6 in bin 5, 0.5 in bin 4, 0.8 in bin 7.
    assert [int(bins.counts[k]) for k in (4, 5, 7, 9)] == [1, 1, 1, 1]
    # 0.95 right, 0.6 wrong, 0.5 right (ties pick class 0), 0.8 right:
    expected = (abs(1 - 0.95) + abs(0 - 0.6) + abs(1 - 0.5) + abs(1 - 0.8)) / 4
    assert bins.expected_calibration_error == pytest.approx(expected)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 40),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)
def test_the_expected_calibration_error_is_a_share(count, classes, seed):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(classes + 1), size=count)
    labels = rng.integers(0, classes + 1, size=count)
    bins = reliability(probabilities, labels)
    assert bins.counts.sum() == count
    assert 0.0 <= bins.expected_calibration_error <= 1.0


def test_the_detectors_distance_is_mahalanobis_under_its_covariance():
    """The graph's distance equals (f - m)^T inverse(cov) (f - m) for the nearest class, the
    covariance (with its ridge) written out."""
    from modules.ood_detector import RIDGE

    rng = np.random.default_rng(3)
    features = rng.normal(size=(90, 12)) * np.linspace(0.2, 3, 12)
    labels = rng.integers(0, 3, size=90)
    features[labels == 1] += 4
    detector = fit_detector(features, labels, num_classes=3)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    scatter = features - means[labels]
    covariance = scatter.T @ scatter / 90
    covariance += RIDGE * np.trace(covariance) / 12 * np.eye(12)
    inverse = np.linalg.inv(covariance)
    probe = rng.normal(size=(5, 12)) * 2
    expected = np.sqrt(
        np.min([np.einsum("bi,ij,bj->b", probe - m, inverse, probe - m) for m in means], axis=0)
        / 12
    )
    assert detector.scores(probe).numpy() == pytest.approx(expected, rel=1e-5)


def test_a_held_out_slice_the_network_gets_all_right_does_not_sharpen_every_score_to_one():
    """Separable images: the likelihood alone keeps rising as T falls to 0; the prior on
    log T holds it where the images' margins put it."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=40)
    logits = np.stack([-(labels * 2 - 1), labels * 2 - 1], axis=1) * rng.uniform(1, 4, (40, 1))
    fitted = fit_temperature(logits, labels)
    assert 0.2 < fitted.value < 1.0  # sharper, as every answer was right; not to the bound
    sharpened = np.exp(logits / fitted.value)
    assert (sharpened / sharpened.sum(axis=1, keepdims=True)).max(axis=1).min() < 0.9999


def test_strange_features_score_higher_and_the_threshold_keeps_its_share():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(200, 32))
    labels = rng.integers(0, 2, size=200)
    train[labels == 1, :4] += 3
    detector = fit_detector(train, labels, num_classes=2)
    held_out = rng.normal(size=(100, 32))
    detector = set_threshold(detector, held_out, train, keep=0.9)
    assert (~detector.flags(detector.scores(held_out)).numpy()).mean() >= 0.9
    strange = rng.normal(size=(50, 32)) * 3 + 5
    assert detector.flags(detector.scores(strange)).numpy().all()
    assert "keeps 90% of 100 held-out images as known" == detector.note


def test_a_threshold_without_enough_held_out_images_comes_from_training_images():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(60, 8))
    detector = fit_detector(train, np.zeros(60, dtype=int), num_classes=2)
    detector = set_threshold(detector, train[:3], train, keep=0.95)
    assert "of 60 training images as known: only 3 were held out" in detector.note
    assert np.isfinite(detector.threshold)


def test_the_held_out_slice_is_chosen_by_pixels_and_has_its_share():
    """The Trainer's training pass and its calibration pass read the split separately: an
    image's side depends on its pixels alone, not on when it is read."""
    import tensorflow as tf

    from modules.dataset import is_held_out

    images = np.random.default_rng(6).random((1500, 6, 6, 3), dtype=np.float32)

    def sides(order, fraction):
        dataset = tf.data.Dataset.from_tensor_slices(images[order])
        return np.array(list(dataset.map(lambda i: is_held_out(i, fraction)).as_numpy_iterator()))

    forward = sides(np.arange(1500), 0.1)
    assert 0.08 < forward.mean() < 0.12
    backward = sides(np.arange(1500)[::-1], 0.1)[::-1]
    assert (forward == backward).all()
    assert not sides(np.arange(1500), 0.0).any()


def test_a_diverged_network_is_not_calibrated_and_flags_every_image():
    """NaN weights answer NaN: the temperature stays 1, the detector flags every image, and
    the Trainer goes on (the Evaluator refuses such a model)."""
    import tensorflow as tf

    from modules.held_out_fit import fit_on_held_out
    from modules.model import build_alexnet, features_and_logits

    model = build_alexnet(2, image_size=67, width_multiplier=0.125)
    model.set_weights([np.full(w.shape, np.nan, np.float32) for w in model.get_weights()])
    images = tf.data.Dataset.from_tensor_slices(
        (np.zeros((4, 67, 67, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    ).batch(2)
    fitted = fit_on_held_out(model, images, images, num_classes=2, keep=0.95)
    assert fitted.temperature.value == 1.0
    assert fitted.temperature.note == (
        "not calibrated: the trained network answers NaN or infinity (training diverged: "
        "lower the learning rate)"
    )
    assert fitted.detector.note.startswith("flags every image: the trained network answers NaN")
    features, _ = features_and_logits(model)(np.zeros((3, 67, 67, 3), np.float32))
    assert fitted.detector.flags(fitted.detector.scores(features)).numpy().all()
    nan_answers = reliability(np.full((2, 2), np.nan), np.array([0, 1]))
    assert nan_answers.counts[0] == 2 and nan_answers.expected_calibration_error == 0.0
