import numpy as np
from scipy.special import ndtri

from xvector.metrics import error_rates
from xvector.scoring.det import det_points, plot_det


def test_det_points_thin_a_million_point_curve_and_keep_its_ends():
    rng = np.random.default_rng(0)
    labels = rng.random(1_000_000) < 0.1
    scores = rng.standard_normal(1_000_000) + 2 * labels
    fpr, fnr, _ = error_rates(scores, labels)
    x, y = det_points(fpr, fnr, max_points=500)
    assert len(fpr) > 900_000 and len(x) <= 2 * 500 + 2
    assert (x[0], y[0]) == (ndtri(1e-4), ndtri(1 - 1e-4))  # (0, 1) clipped onto the axes
    assert (x[-1], y[-1]) == (ndtri(1 - 1e-4), ndtri(1e-4))
    # Every kept point lies on the curve, in order (both rates monotone).
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) <= 0)


def test_gaussian_scores_give_a_straight_det_line():
    # Unit-variance Gaussians d' = 2 apart: probit(fnr) = -probit(fpr) - 2 exactly, up to sampling.
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(200_000, bool), np.zeros(200_000, bool)]
    scores = rng.standard_normal(400_000) + 2 * labels
    x, y = det_points(*error_rates(scores, labels)[:2])
    mid = (x > -1.5) & (x < 0.5)  # away from the sparse tails
    np.testing.assert_allclose(y[mid], -x[mid] - 2, atol=0.05)


def test_plot_det_writes_png(tmp_path):
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.4, 0.5, 0.1, 0.7, 0.3])
    plot_det(tmp_path / "sub" / "det.png", {"a": (scores, labels), "b": (-scores, labels)})
    assert (tmp_path / "sub" / "det.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["det.png"]  # no temp file left
