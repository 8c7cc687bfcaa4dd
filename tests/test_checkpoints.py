"""Checkpoints: a killed fit resumes to the same weights; warm_start; damaged and foreign files."""

import io
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese._checkpoints import write_checkpoint

# Long enough to be killed in. Under early_stopping=True ten classes are held
# out and retrained (two phases); early_stopping=False trains once, to the end.
FIT = dict(max_epochs=30, device="cpu", random_state=0)

CHILD = """
import sys
from sklearn.datasets import load_digits
from sksiamese import SiameseEmbedder
sys.path.insert(0, {tests!r})
from test_checkpoints import FIT, data
SiameseEmbedder(**FIT, early_stopping={early_stopping!r}, checkpoint_dir={folder!r}).fit(*data())
"""


def data():
    X, y = load_digits(return_X_y=True)
    rows = np.concatenate([np.flatnonzero(y == digit)[:60] for digit in range(10)])
    return (X[rows] / 16).astype(np.float32), y[rows]


def epochs_saved(path):
    """The epochs in a checkpoint file (its content follows three header lines)."""
    content = path.read_bytes().split(b"\n", 3)[3]
    return len(torch.load(io.BytesIO(content), weights_only=False)["history"])


def same_weights(a, b):
    first, second = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.slow
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_killed_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, early_stopping):
    X, y = data()
    params = dict(FIT, early_stopping=early_stopping)
    uninterrupted = SiameseEmbedder(**params).fit(X, y)
    script = CHILD.format(
        tests=str(Path(__file__).parent), folder=str(tmp_path), early_stopping=early_stopping
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    while child.poll() is None and not any(epochs_saved(p) >= 2 for p in tmp_path.glob("*.ckpt")):
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    (saved,) = tmp_path.glob("*.ckpt")
    assert 0 < epochs_saved(saved) < FIT["max_epochs"]  # killed in the middle
    resumed = SiameseEmbedder(**params, checkpoint_dir=tmp_path).fit(X, y)
    assert resumed.loss_curve_ == uninterrupted.loss_curve_
    assert resumed.validation_scores_ == uninterrupted.validation_scores_
    assert same_weights(resumed, uninterrupted)
    np.testing.assert_array_equal(resumed.transform(X), uninterrupted.transform(X))


def test_a_finished_checkpoint_trains_nothing_more(tmp_path):
    X, y = data()
    params = dict(FIT, max_epochs=3, early_stopping=False, checkpoint_dir=tmp_path)
    first = SiameseEmbedder(**params).fit(X, y)
    (saved,) = tmp_path.glob("*.ckpt")
    written = saved.stat().st_mtime_ns
    again = SiameseEmbedder(**params).fit(X, y)
    assert saved.stat().st_mtime_ns == written  # no epoch ran
    assert same_weights(again, first)
    assert again.loss_curve_ == first.loss_curve_


def weights(estimator):
    """The trained parameters (not the batch-norm statistics a forward pass updates)."""
    return {k: v.detach().clone() for k, v in estimator.net_.module_.named_parameters()}


def largest_change(before, after):
    return max((before[k] - after[k]).abs().max().item() for k in before)


# A learning rate too small to move a weight: a warm start keeps the fitted weights.
STILL = 1e-30


def test_warm_start_continues_from_the_fitted_network(small):
    X, y = small
    fitted = SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)
    before = weights(fitted)
    fitted.set_params(warm_start=True, lr=STILL).fit(X, y)
    assert largest_change(before, weights(fitted)) < 1e-20
    fitted.set_params(lr=3e-3).fit(X, y)
    assert largest_change(before, weights(fitted)) > 1e-4  # and trains on from there
    with pytest.raises(ValueError, match="features"):
        fitted.fit(X[:, :10], y)
    dim = fitted.embedding_dim
    with pytest.raises(ValueError, match="warm_start continues the fitted network"):
        fitted.set_params(embedding_dim=8).fit(X, y)
    # Without warm_start the same estimator starts afresh: the weights of a new one.
    cold = fitted.set_params(warm_start=False, embedding_dim=dim, lr=STILL).fit(X, y)
    new = SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0, lr=STILL)
    assert largest_change(weights(new.fit(X, y)), weights(cold)) < 1e-20


def test_a_classifier_warm_starts_its_own_embedder(small):
    X, y = small
    clf = OneShotClassifier(max_epochs=1, early_stopping=False, random_state=0).fit(X, y)
    embedder = clf.embedder_
    before = weights(embedder)
    clf.set_params(warm_start=True, lr=STILL).fit(X, y)
    assert clf.embedder_ is embedder
    assert largest_change(before, weights(embedder)) < 1e-20


def test_a_damaged_checkpoint_is_refused(tmp_path):
    X, y = data()
    params = dict(FIT, max_epochs=2, early_stopping=False, checkpoint_dir=tmp_path)
    SiameseEmbedder(**params).fit(X, y)
    (saved,) = tmp_path.glob("*.ckpt")
    content = bytearray(saved.read_bytes())
    content[len(content) // 2] ^= 0xFF
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="is damaged"):
        SiameseEmbedder(**params).fit(X, y)
    saved.write_bytes(bytes(content[: len(content) // 3]))
    with pytest.raises(ValueError, match="is damaged"):
        SiameseEmbedder(**params).fit(X, y)
    saved.write_bytes(b"")
    with pytest.raises(ValueError, match="not a sksiamese checkpoint"):
        SiameseEmbedder(**params).fit(X, y)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    X, y = data()
    params = dict(FIT, max_epochs=1, early_stopping=False, checkpoint_dir=tmp_path)
    SiameseEmbedder(**params).fit(X, y)
    with pytest.raises(ValueError, match="other settings or another random_state"):
        SiameseEmbedder(**{**params, "margin": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="needs an int random_state"):
        SiameseEmbedder(**{**params, "random_state": None}).fit(X, y)


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "phase.ckpt"
    write_checkpoint(path, "settings", {"epoch": 1})
    before = path.read_bytes()
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):  # cannot be pickled
        write_checkpoint(path, "settings", {"epoch": 2, "bad": lambda: None})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase.ckpt"]


def test_both_phases_of_a_retrained_fit_are_checkpointed_and_resumed(tmp_path, monkeypatch):
    # Fails if the retraining phase (fewer epochs than max_epochs) is taken
    # for a fit of other settings, or is not resumed as the first phase is.
    from test_selection import ScriptedScores

    from sksiamese._held_out import OneShotEpisodes

    X, y = data()
    params = dict(FIT, max_epochs=4)

    def fit(**extra):
        # Best at epoch 2: the held-out phase runs 4 epochs, the retraining 3.
        monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.4, 0.5, 0.9, 0.6, 0.3]))
        return SiameseEmbedder(**params, **extra).fit(X, y)

    plain = fit()
    assert plain.best_epoch_ == 2 and plain.n_iter_ == 3
    checkpointed = fit(checkpoint_dir=tmp_path)
    saved = sorted(tmp_path.glob("*.ckpt"))
    assert sorted(epochs_saved(path) for path in saved) == [3, 4]
    written = [path.stat().st_mtime_ns for path in saved]
    resumed = fit(checkpoint_dir=tmp_path)
    assert [path.stat().st_mtime_ns for path in saved] == written  # nothing trained again
    for other in (checkpointed, resumed):
        assert same_weights(other, plain)
        assert other.validation_scores_ == plain.validation_scores_
        assert other.loss_curve_ == plain.loss_curve_
