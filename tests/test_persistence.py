import pickle

import joblib
import numpy as np
import pytest
import torch

from sksiamese import OneShotClassifier, SiameseEmbedder


@pytest.mark.parametrize(
    "loss, shape", [("triplet", (64,)), ("bce", (64,)), ("contrastive", (8, 8))]
)
def test_saved_weights_reload_without_unpickling(small, tmp_path, loss, shape):
    X, y = small
    X = X.reshape(-1, *shape)  # images carry the fixed test-time distortions
    params = dict(loss=loss, max_epochs=2, embedding_dim=16, random_state=0)
    trained = SiameseEmbedder(**params).fit(X, y)
    path = tmp_path / "embedder.pt"
    trained.save_weights(path)
    torch.load(path, weights_only=True)  # tensors and plain values only
    restored = SiameseEmbedder(**params).load_weights(path)
    np.testing.assert_array_equal(restored.transform(X), trained.transform(X))
    pairs = np.stack([X[:5], X[5:10]], axis=1)
    np.testing.assert_array_equal(restored.pair_score(pairs), trained.pair_score(pairs))
    assert restored.temperature_ == trained.temperature_
    assert restored.loss_curve_ == trained.loss_curve_
    torch.testing.assert_close(restored.inference_distortions_, trained.inference_distortions_)


def test_loading_leaves_the_global_rng_and_drops_stale_column_names(small, tmp_path):
    # Fails if load_weights draws the discarded initial weights from torch's
    # global generator, or keeps feature_names_in_ of an earlier fit on a frame.
    pd = pytest.importorskip("pandas")
    X, y = small
    params = dict(max_epochs=1, embedding_dim=8, random_state=0)
    SiameseEmbedder(**params).fit(X, y).save_weights(tmp_path / "w.pt")
    on_frame = SiameseEmbedder(**params).fit(pd.DataFrame(X).add_prefix("pixel"), y)
    assert hasattr(on_frame, "feature_names_in_")
    torch.manual_seed(5)
    before = torch.get_rng_state()
    on_frame.load_weights(tmp_path / "w.pt")
    assert torch.equal(torch.get_rng_state(), before)
    assert not hasattr(on_frame, "feature_names_in_")


def test_weights_of_another_architecture_are_refused(small, tmp_path):
    X, y = small
    SiameseEmbedder(max_epochs=1, embedding_dim=16).fit(X, y).save_weights(tmp_path / "w.pt")
    with pytest.raises(ValueError, match="do not fit this estimator's network"):
        SiameseEmbedder(embedding_dim=8).load_weights(tmp_path / "w.pt")


@pytest.mark.parametrize(
    "saved, loaded", [("triplet", "contrastive"), ("contrastive", "bce"), ("bce", "triplet")]
)
def test_weights_of_another_loss_are_refused(small, tmp_path, saved, loaded):
    X, y = small
    trained = SiameseEmbedder(loss=saved, max_epochs=1, random_state=0).fit(X, y)
    trained.save_weights(tmp_path / "w.pt")
    # The error names both losses, whatever its wording.
    with pytest.raises(ValueError, match=rf"(?s)(?=.*'{saved}')(?=.*'{loaded}')"):
        SiameseEmbedder(loss=loaded).load_weights(tmp_path / "w.pt")


def test_a_file_of_another_format_names_the_version(small, tmp_path):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    embedder.save_weights(tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    torch.save({**state, "format": "sksiamese-weights-3"}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="another version of sksiamese"):
        SiameseEmbedder().load_weights(tmp_path / "old.pt")


def test_a_file_from_elsewhere_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a file written by"):
        SiameseEmbedder().load_weights(tmp_path / "other.pt")


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips_are_exact(small, tmp_path, dump):
    X, y = small
    clf = OneShotClassifier(max_epochs=2, random_state=0).fit(X, y)
    path = tmp_path / "clf"
    if dump == "pickle":
        path.write_bytes(pickle.dumps(clf))
        restored = pickle.loads(path.read_bytes())
    else:
        joblib.dump(clf, path)
        restored = joblib.load(path)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.embedder_.transform(X), clf.embedder_.transform(X))
