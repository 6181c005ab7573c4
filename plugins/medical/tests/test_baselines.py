from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from ssl_domains_medical.baselines import ImageLogistic


@pytest.mark.parametrize("shape", [(1, 16, 16), (2, 8, 8, 8)])
def test_learns_a_bright_blob(shape: tuple[int, ...]) -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(80, *shape).astype("float32")
    y = np.arange(80) % 4 == 0  # imbalanced: 25% positive
    x[y, 0, 2:6, 2:6] += 1.5
    model = ImageLogistic(bins=8, grid=4).fit(x[:60], y[:60])
    p = model.predict_proba(x[60:])
    assert p.shape == (20, 2) and np.allclose(p.sum(1), 1)
    assert roc_auc_score(y[60:], p[:, 1]) > 0.9
    n_spatial = len(shape) - 1
    assert model.features(x[:3]).shape == (3, shape[0] * (8 + 4**n_spatial))


def test_rejects_non_images() -> None:
    with pytest.raises(ValueError, match=r"expects \[N, C, \*spatial\].*got shape \(4, 16\)"):
        ImageLogistic().fit(np.zeros((4, 16)), [0, 1, 0, 1])
