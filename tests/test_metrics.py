import numpy as np
from skimage.metrics import structural_similarity

from inr_gon.metrics import image_scores, mse, psnr, ssim


def test_psnr_of_known_error():
    truth = np.zeros((2, 4, 4, 1))
    pred = truth + np.array([0.1, 0.01])[:, None, None, None]
    assert np.allclose(mse(pred, truth), [0.01, 1e-4])
    assert np.allclose(psnr(pred, truth), [20.0, 40.0])
    assert psnr(truth, truth)[0] == 120.0  # exact match: capped, finite


def test_ssim_matches_scikit_image_and_is_one_on_identity():
    rng = np.random.default_rng(0)
    truth = rng.random((2, 16, 12, 3))
    pred = np.clip(truth + 0.05 * rng.standard_normal(truth.shape), 0, 1)
    ref = structural_similarity(pred[1], truth[1], data_range=1.0, channel_axis=-1)
    assert np.isclose(ssim(pred, truth)[1], ref)
    assert np.allclose(ssim(truth, truth), 1.0)


def test_ssim_on_tiny_images():
    rng = np.random.default_rng(1)
    small = rng.random((1, 4, 5, 1))
    assert np.isfinite(ssim(small, small)).all()  # a 3x3 window fits
    assert np.isnan(ssim(small[:, :2], small[:, :2])).all()  # nothing fits: NaN, not a crash
    assert set(image_scores(small, small)) == {"mse", "psnr", "ssim"}
