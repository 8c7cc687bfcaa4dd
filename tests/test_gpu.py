"""The CUDA path; skipped where there is no GPU (as in CI)."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from sksiamese import OneShotClassifier, SiameseEmbedder

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
