"""benchmarks/sample_quality.py: its Fréchet distance, precision/recall and features."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def sq():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("sample_quality")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_frechet_distance_is_the_closed_form_of_two_gaussians(sq):
    """Diagonal Gaussians: |mu_a - mu_b|^2 + sum (s_a - s_b)^2 (per-axis standard deviations),
    from 20,000 draws each; a set against itself is 0."""
    rng = np.random.default_rng(0)
    s_a, s_b = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    a = rng.standard_normal((20000, 3)) * s_a
    b = rng.standard_normal((20000, 3)) * s_b + np.array([1.0, 0.0, -2.0])
    expected = 1.0 + 4.0 + ((s_a - s_b) ** 2).sum()
    assert sq.frechet_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert abs(sq.frechet_distance(a, a)) < 1e-6


def test_precision_and_recall_tell_fidelity_from_diversity(sq):
    """Samples covering one of two real clusters: every sample is real-looking (precision 1),
    half the real items are missed (recall about 0.5); far-away samples score 0 on both."""
    rng = np.random.default_rng(1)
    real = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(20, 1, (300, 2))])
    half = rng.normal(0, 1, (600, 2))
    assert sq.coverage(real, half) > 0.95
    assert 0.4 < sq.coverage(half, real) < 0.6
    far = rng.normal(100, 1, (600, 2))
    assert sq.coverage(real, far) == 0 and sq.coverage(far, real) == 0


def test_features_of_colour_and_grey_images(sq):
    rng = np.random.default_rng(2)
    colour, grey = rng.random((4, 32, 32, 3)), rng.random((4, 28, 28, 1))
    assert sq.pixel_features(colour).shape == (4, 192)
    assert np.allclose(sq.pixel_features(colour)[0, :3], colour[0, :4, :4].mean((0, 1)))
    assert sq.pixel_features(grey).shape == (4, 64)
    assert sq.hog_features(colour).shape == sq.hog_features(colour[..., :1].repeat(3, -1)).shape
    assert sq.hog_features(grey).shape[0] == 4
    flat = np.full((1, 32, 32, 3), 0.5)
    assert np.allclose(sq.hog_features(flat), 0)  # no edges, no gradients


def test_pixel_gaussian_matches_the_training_moments(sq):
    rng = np.random.default_rng(3)
    train = (0.5 + 0.1 * rng.standard_normal((4000, 4, 4, 1))).clip(0, 1).astype(np.float32)
    draws = sq.pixel_gaussian(train, 4000, seed=0)
    assert draws.shape == (4000, 4, 4, 1) and draws.min() >= 0 and draws.max() <= 1
    assert np.allclose(draws.mean(0), train.mean(0), atol=0.01)
    assert np.allclose(draws.std(0), train.std(0), atol=0.01)
