"""Training through skorch's AccelerateMixin, on the CPU (one process)."""

import numpy as np
import pytest

from sksiamese import OneShotClassifier, SiameseEmbedder

accelerate = pytest.importorskip("accelerate")


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    # accelerate keeps one process-wide state; each test configures its own.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_accelerated_training_matches_plain_training(small):
    X, y = small
    plain = SiameseEmbedder(max_epochs=2, device="cpu", random_state=0).fit(X, y)
    accelerated = SiameseEmbedder(
        max_epochs=2, accelerator=accelerate.Accelerator(cpu=True), random_state=0
    ).fit(X, y)
    assert type(accelerated.net_).__name__ == "AcceleratedSiameseNet"
    np.testing.assert_allclose(accelerated.transform(X), plain.transform(X), atol=1e-5)


def test_bf16_mixed_precision_trains(small):
    X, y = small
    accelerator = accelerate.Accelerator(cpu=True, mixed_precision="bf16")
    clf = OneShotClassifier(loss="bce", max_epochs=3, accelerator=accelerator, random_state=0)
    clf.fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()
    assert clf.score(X, y) > 0.8
