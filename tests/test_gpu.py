"""The CUDA path; skipped where there is no GPU (as in CI)."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from sksiamese import OneShotClassifier, SiameseEmbedder, _batches
from sksiamese._batches import ClassBalancedBatches

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "bce"])
def test_auto_device_trains_on_cuda(small, loss):
    X, y = small
    embedder = SiameseEmbedder(loss=loss, max_epochs=3, random_state=0).fit(X, y)
    assert embedder.net_.device == "cuda"
    assert next(embedder.net_.module_.parameters()).is_cuda
    assert embedder.score(X, y) > 0.9


def test_model_trained_on_gpu_predicts_on_a_cpu_only_machine(small, tmp_path):
    X, y = small
    clf = OneShotClassifier(loss="bce", max_epochs=3, random_state=0).fit(X, y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    script = (
        "import pickle, sys, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        f"clf = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"np.save({str(tmp_path / 'proba.npy')!r}, clf.predict_proba(X))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    cpu_proba = np.load(tmp_path / "proba.npy")
    np.testing.assert_allclose(cpu_proba, clf.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("share", [0.25, 0.0])
def test_batches_on_cuda_match_the_cpu_batches(small, monkeypatch, share):
    # share 0.25: the data fits and is gathered on the GPU; share 0: it stays
    # on the CPU and each batch is copied through pinned memory.
    monkeypatch.setattr(_batches, "_DEVICE_SHARE", share)
    X, y = small
    params = dict(classes_per_batch=4, samples_per_class=3, seed=0)
    on_cpu = ClassBalancedBatches(Dataset(X, y), 12, **params)
    on_gpu = ClassBalancedBatches(Dataset(X, y), 12, device="cuda", **params)
    assert on_gpu.X.is_cuda == (share > 0)
    for (Xc, yc), (Xg, yg) in zip(on_cpu, on_gpu, strict=True):
        assert Xg.is_cuda and yg.is_cuda
        torch.testing.assert_close(Xg.cpu(), Xc)
        torch.testing.assert_close(yg.cpu(), yc)


def test_images_train_and_embed_with_test_time_augmentation_on_cuda(small):
    X, y = small
    images = X.reshape(-1, 8, 8)
    # Eight views asked for: 'auto' may keep one view on so few classes.
    embedder = SiameseEmbedder(max_epochs=5, inference_views=8, random_state=0).fit(images, y)
    assert embedder.net_.augmentation is not None
    assert len(embedder.inference_distortions_) == 7
    assert embedder.score(images, y) > 0.9
