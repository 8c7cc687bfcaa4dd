"""The one training engine of the embedder and the verifier, and the fitted state it leaves."""

import io
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese._net import PairBranch
from sksiamese.modules import MLPBranch
from sksiamese.pairs import make_pairs


@pytest.fixture(scope="module")
def pairs(small):
    X, y = small
    return make_pairs(X, y, 200, random_state=0)


def trained_tensors_outside_device_mapped_state(net):
    """Tensors of the trained net that its pickle holds outside skorch's device mapping.

    skorch's ``__getstate__`` moves ``module_``, ``criterion_`` and
    ``optimizer_`` into one blob that it loads with ``map_location``. Any of
    their tensors (on the training device) reachable from the rest of the
    state, as through an lr scheduler's optimizer, is loaded on the device it
    was saved from, and fails without CUDA.
    """
    optimizer_state = [
        value
        for state in net.optimizer_.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    ]
    trained = {
        tensor.data_ptr()
        for tensor in [
            *net.module_.state_dict().values(),
            *net.criterion_.state_dict().values(),
            *optimizer_state,
        ]
    }
    found = []

    class Spy(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, torch.Tensor) and obj.data_ptr() in trained:
                found.append(obj)

    state = dict(net.__getstate__())
    state.pop("__cuda_dependent_attributes__")
    Spy(io.BytesIO()).dump(state)
    return found


@pytest.mark.parametrize(
    "make",
    [
        lambda: SiameseEmbedder(max_epochs=2, random_state=0),
        lambda: SiameseEmbedder(
            module=MLPBranch(n_features=64, embedding_dim=8), max_epochs=2, random_state=0
        ),
        lambda: SiameseEmbedder(max_epochs=2, early_stopping=True, random_state=0),
        lambda: SiameseVerifier(max_epochs=2, random_state=0),
    ],
    ids=["embedder", "module-instance", "selected", "verifier"],
)
def test_fitted_nets_pickle_no_tensor_outside_skorchs_device_mapping(make, small, pairs):
    estimator = make()
    estimator.fit(*(pairs if isinstance(estimator, SiameseVerifier) else small))
    assert not trained_tensors_outside_device_mapped_state(estimator.net_)
    # Without releasing the training state, the lr scheduler's optimizer would be.
    names = dict(estimator.net_.callbacks_)
    assert names["lr_schedule"].lr_scheduler_ is None
    assert "keep_best" not in names


def test_verifier_and_embedder_build_the_same_branch(small, pairs):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1, early_stopping=False, random_state=0).fit(X, y)
    verifier = SiameseVerifier(max_epochs=1, early_stopping=False, random_state=0)
    verifier.fit(*pairs)
    assert isinstance(verifier.net_.module_, PairBranch)
    branch = verifier.net_.module_.branch
    assert type(branch) is type(embedder.net_.module_)
    assert [p.shape for p in branch.parameters()] == [
        p.shape for p in embedder.net_.module_.parameters()
    ]


@pytest.mark.parametrize(
    ("optimizer", "setting", "value"),
    [(torch.optim.SGD, "momentum", 0.0), (torch.optim.Adam, "betas", (0.9, 0.999))],
)
def test_one_cycle_leaves_the_optimizers_momentum_alone(small, optimizer, setting, value):
    X, y = small
    embedder = SiameseEmbedder(
        optimizer=optimizer,
        lr=0.05,
        lr_schedule="onecycle",
        max_epochs=2,
        early_stopping=False,
        random_state=0,
    ).fit(X, y)
    for group in embedder.net_.optimizer_.param_groups:
        assert group[setting] == value
    assert embedder.loss_curve_ and np.isfinite(embedder.loss_curve_).all()


@pytest.mark.parametrize("Estimator", [SiameseEmbedder, SiameseVerifier])
def test_routed_embedding_dim_overrides_the_default_modules(Estimator, small, pairs):
    X, y = small
    estimator = Estimator(module__embedding_dim=5, loss="bce", max_epochs=1, random_state=0)
    estimator.fit(*(pairs if Estimator is SiameseVerifier else (X, y)))
    if Estimator is SiameseEmbedder:
        assert estimator.transform(X).shape == (len(X), 5)
    else:
        assert estimator.net_.forward(pairs[0][:3]).shape == (3, 2, 5)


def test_routed_module_arguments_with_a_module_instance_are_refused(small):
    X, y = small
    module = MLPBranch(n_features=64, embedding_dim=8)
    with pytest.raises(ValueError, match="module is an instance"):
        SiameseEmbedder(module=module, module__embedding_dim=5, max_epochs=1).fit(X, y)


@pytest.mark.parametrize("Estimator", [SiameseEmbedder, OneShotClassifier, SiameseVerifier])
def test_set_params_refuses_unknown_names_and_keeps_routed_ones(Estimator):
    estimator = Estimator()
    estimator.set_params(module__hidden_sizes=(8,), optimizer__weight_decay=0.1)
    assert estimator.get_params()["module__hidden_sizes"] == (8,)
    with pytest.raises(ValueError, match="Invalid parameter 'mragin'"):
        estimator.set_params(mragin=0.3)


def test_verifier_records_its_features_and_wants_one_label_per_pair(pairs):
    pair_array, same = pairs
    verifier = SiameseVerifier(max_epochs=1, random_state=0).fit(pair_array, same)
    assert verifier.n_features_in_ == 64
    with pytest.raises(ValueError, match="1d array"):
        SiameseVerifier(max_epochs=1).fit(pair_array, np.c_[same, same])


def test_embedder_names_its_output_features_for_pandas_output(small):
    pd = pytest.importorskip("pandas")
    X, y = small
    embedder = SiameseEmbedder(embedding_dim=6, max_epochs=1, random_state=0).fit(X, y)
    names = embedder.get_feature_names_out()
    assert names.tolist() == [f"siameseembedder{i}" for i in range(6)]
    frame = embedder.set_output(transform="pandas").transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.columns.tolist() == names.tolist()
    pipeline = make_pipeline(StandardScaler(), FrozenEstimator(embedder))
    pipeline.set_output(transform="pandas").fit(X, y)
    assert pipeline.transform(X).columns.tolist() == names.tolist()


def test_fit_leaves_the_users_callbacks_untouched(small):
    from skorch.callbacks import EpochScoring

    X, y = small
    scoring = EpochScoring(lambda net, X, y: 0.0, on_train=True, name="zero")
    embedder = SiameseEmbedder(
        max_epochs=2, callbacks=[scoring], early_stopping=False, random_state=0
    ).fit(X, y)
    assert not hasattr(scoring, "best_score_")
    assert embedder.net_.history[:, "zero"] == [0.0, 0.0]


def test_a_misspelt_argument_survives_clone_to_be_refused_by_fit(small):
    X, y = small
    estimator = clone(SiameseEmbedder(mragin=0.3, max_epochs=1))
    with pytest.raises(TypeError, match="mragin"):
        cross_val_score(estimator, X, y, cv=2, error_score="raise")


def test_batch_losses_reach_the_history_read_once_an_epoch(small, monkeypatch):
    # Fails if a batch's loss is recorded against another batch, or is read
    # from the device batch by batch (skorch's ``.item()``, which waits for a GPU).
    X, y = small
    # Shared state: fit trains on a copy of the callback.
    seen = {"in_batch": False, "losses": [], "items": 0}

    class Recorder(Callback):
        def on_batch_begin(self, net, **kwargs):
            seen["in_batch"] = True

        def on_batch_end(self, net, training=False, loss=None, **kwargs):
            seen["in_batch"] = False
            seen["losses"].append(float(loss.detach()))

    item = torch.Tensor.item

    def counted_item(tensor):
        # A value computed by the network (not the CPU step count of Adam's).
        seen["items"] += seen["in_batch"] and tensor.grad_fn is not None
        return item(tensor)

    monkeypatch.setattr(torch.Tensor, "item", counted_item)
    embedder = SiameseEmbedder(
        max_epochs=2, early_stopping=False, callbacks=[Recorder()], random_state=0
    ).fit(X, y)
    history = embedder.net_.history
    recorded = [loss for epoch in history[:, "batches", :, "train_loss"] for loss in epoch]
    assert len(recorded) == sum(history[:, "train_batch_count"]) > 2
    assert recorded == seen["losses"]
    assert seen["items"] == 0
