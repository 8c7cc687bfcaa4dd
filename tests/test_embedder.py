import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback

from sksiamese import SiameseEmbedder
from sksiamese.modules import ConvBranch, MLPBranch


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "bce"])
def test_training_separates_seen_classes_better_than_untrained(small, loss):
    X, y = small
    # From a random start (not the residual one, which already separates
    # them), keeping the last epoch.
    kept_last = dict(loss=loss, module__residual=False, early_stopping=False, random_state=0)
    untrained = SiameseEmbedder(max_epochs=1, lr=1e-9, **kept_last).fit(X, y)
    trained = SiameseEmbedder(max_epochs=15, **kept_last).fit(X, y)
    assert trained.loss_curve_[-1] < trained.loss_curve_[0]
    assert trained.score(X, y) > untrained.score(X, y)
    assert trained.score(X, y) >= 0.95


def test_transform_gives_float32_embeddings_of_embedding_dim(small):
    X, y = small
    embedder = SiameseEmbedder(
        embedding_dim=7, module__normalize=True, max_epochs=1, random_state=0
    ).fit(X, y)
    embeddings = embedder.transform(X)
    assert embeddings.shape == (len(X), 7)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8)])
def test_images_get_the_convnet(small, shape):
    X, y = small
    images = X.reshape(len(X), *shape)
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(images, y)
    assert isinstance(embedder.net_.module_, ConvBranch)
    assert embedder.transform(images).shape == (len(X), 64)


def test_features_get_the_mlp(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    assert isinstance(embedder.net_.module_, MLPBranch)


class TinyBranch(torch.nn.Module):
    def __init__(self, n_features=64, width=3):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, width)

    def forward(self, X):
        return self.linear(X)


@pytest.mark.parametrize("loss", ["triplet", "bce"])
def test_custom_module_class_receives_routed_parameters(small, loss):
    X, y = small
    embedder = SiameseEmbedder(
        module=TinyBranch, module__width=5, loss=loss, max_epochs=1, random_state=0
    ).fit(X, y)
    assert embedder.net_.module_.linear.out_features == 5
    assert embedder.transform(X).shape == (len(X), 5)
    assert embedder.get_params()["module__width"] == 5


def test_module_instance_is_copied_not_trained_in_place(small):
    X, y = small
    module = TinyBranch()
    before = module.linear.weight.detach().clone()
    SiameseEmbedder(module=module, max_epochs=2, random_state=0).fit(X, y)
    assert torch.equal(module.linear.weight, before)


def test_routed_optimizer_parameters_reach_the_optimizer(small):
    X, y = small
    embedder = SiameseEmbedder(optimizer=torch.optim.SGD, optimizer__weight_decay=0.5, max_epochs=1)
    embedder.fit(X, y)
    assert embedder.net_.optimizer_.param_groups[0]["weight_decay"] == 0.5


def test_unknown_keyword_argument_is_refused_at_fit(small):
    X, y = small
    embedder = SiameseEmbedder(modul__width=3)
    with pytest.raises(TypeError, match="modul__width"):
        embedder.fit(X, y)


def test_sparse_input_is_densified_per_batch_and_matches_dense(small):
    X, y = small
    dense = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    sparse = SiameseEmbedder(max_epochs=2, random_state=0).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.transform(sp.csr_matrix(X)), dense.transform(X), atol=1e-6)


@pytest.mark.parametrize(
    "relabel",
    [
        lambda y: y + 10,
        lambda y: y.astype(np.float32),
        lambda y: np.array(["ant", "bee", "cat", "dog", "eel"])[y],
        lambda y: np.array(["ant", "bee", "cat", "dog", "eel"], dtype=object)[y],
    ],
    ids=["shifted", "float", "strings", "object strings"],
)
def test_labels_that_differ_only_by_encoding_train_the_same_network(small, relabel):
    # Labels enter only through their rank among the classes: values, dtype or
    # type that keep it must not change a thing (random_state fixed).
    X, y = small
    reference = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, relabel(y))
    np.testing.assert_array_equal(embedder.transform(X), reference.transform(X))
    assert embedder.temperature_ == reference.temperature_


def test_pair_distance_and_score_follow_embeddings(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    pairs = np.stack([X[:10], X[10:20]], axis=1)
    embeddings = embedder.transform(X)
    expected = np.linalg.norm(embeddings[:10] - embeddings[10:20], axis=1)
    np.testing.assert_allclose(embedder.pair_distance(pairs), expected, rtol=1e-5)
    np.testing.assert_allclose(embedder.pair_score(pairs), -expected, rtol=1e-5)


def test_bce_pair_score_is_the_head_probability(small):
    X, y = small
    embedder = SiameseEmbedder(loss="bce", max_epochs=5, random_state=0).fit(X, y)
    same = np.stack([X[y == 0][:10], X[y == 0][10:20]], axis=1)
    different = np.stack([X[y == 0][:10], X[y == 1][:10]], axis=1)
    same_scores, different_scores = embedder.pair_score(same), embedder.pair_score(different)
    assert np.all((same_scores > 0) & (same_scores < 1))
    # Trained on each anchor's hardest negative, the head's 0.5 point is not a
    # decision threshold; what it must get right is the order of the pairs.
    labels = np.r_[np.ones(len(same_scores)), np.zeros(len(different_scores))]
    assert roc_auc_score(labels, np.r_[same_scores, different_scores]) > 0.9


def test_score_is_leave_one_out_nearest_neighbour_accuracy(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    E = embedder.transform(X)
    distances = np.linalg.norm(E[:, None] - E[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    expected = np.mean(y[distances.argmin(1)] == y)
    assert embedder.score(X, y) == pytest.approx(expected)


def test_history_and_training_curves(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=4, early_stopping=False, random_state=0).fit(X, y)
    assert embedder.n_iter_ == 4 == len(embedder.net_.history) == embedder.best_epoch_
    assert embedder.validation_scores_ is None
    assert embedder.loss_curve_ == list(embedder.net_.history[:, "train_loss"])


class Counter(Callback):
    """Counts the batches of each epoch into the history, as skorch callbacks record results."""

    def initialize(self):
        self.batches = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.batches += 1

    def on_epoch_end(self, net, **kwargs):
        net.history.record("counted", self.batches)
        self.batches = 0


def test_user_callbacks_are_passed_through_to_skorch(small):
    X, y = small
    counter = Counter()
    embedder = SiameseEmbedder(max_epochs=2, callbacks=[("counter", counter)], random_state=0)
    embedder.fit(X, y)
    names = [name for name, _ in embedder.net_.callbacks_]
    assert names.index("finite_loss") < names.index("counter")
    history = embedder.net_.history
    assert history[:, "counted"] == [len(epoch["batches"]) for epoch in history]
    # fit trains a copy: the estimator's own callback is left as it was given.
    assert not hasattr(counter, "batches")


def test_same_random_state_gives_identical_embeddings(small):
    X, y = small
    first = SiameseEmbedder(max_epochs=2, random_state=3).fit(X, y).transform(X)
    second = SiameseEmbedder(max_epochs=2, random_state=3).fit(X, y).transform(X)
    other = SiameseEmbedder(max_epochs=2, random_state=4).fit(X, y).transform(X)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_fit_leaves_torch_global_random_state_alone(small):
    X, y = small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


class Recording(torch.nn.Module):
    def __init__(self, n_features=64):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, 4)
        self.seen = []

    def forward(self, X):
        self.seen.append((self.training, torch.is_grad_enabled(), len(X)))
        return self.linear(X)


def test_inference_runs_in_eval_mode_without_grad_in_batches(small):
    X, y = small
    embedder = SiameseEmbedder(module=Recording, batch_size=64, max_epochs=1, random_state=0)
    embedder.fit(X, y)
    embedder.net_.module_.seen.clear()
    embedder.transform(X)
    seen = embedder.net_.module_.seen
    # The last batch is padded to a multiple of 8 rows (batch invariance).
    assert [n for _, _, n in seen] == [64, 64, -(-(len(X) - 128) // 8) * 8]
    assert not any(training or grad for training, grad, _ in seen)


def test_verbose_prints_the_epoch_table_and_a_progress_bar(small, capsys):
    X, y = small
    SiameseEmbedder(max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert "train_loss" in out and "dur" in out
    assert "it/s" in err or "s/it" in err  # tqdm's bar


def test_verbose_zero_prints_nothing(small, capsys):
    X, y = small
    SiameseEmbedder(max_epochs=2, verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "loss, classes_per_batch, expected",
    [("contrastive", "auto", 64), ("triplet", "auto", 32), ("bce", "auto", 32), ("triplet", 3, 3)],
)
def test_classes_per_batch_auto_depends_on_the_loss(small, loss, classes_per_batch, expected):
    X, y = small
    embedder = SiameseEmbedder(loss=loss, classes_per_batch=classes_per_batch, max_epochs=1)
    net = embedder.fit(X, y).net_
    assert net.get_params()["iterator_train__classes_per_batch"] == expected


def test_n_features_in_counts_every_feature_of_a_sample(small):
    # Fails if image input records X.shape[1] (the rows of each image) rather
    # than the features of one sample, as the verifier records them.
    from sksiamese import OneShotClassifier, SiameseVerifier
    from sksiamese.pairs import make_pairs

    X, y = small
    images = X.reshape(-1, 8, 8)
    options = dict(max_epochs=1, early_stopping=False, random_state=0)
    assert SiameseEmbedder(**options).fit(images, y).n_features_in_ == 64
    assert OneShotClassifier(**options).fit(images, y).n_features_in_ == 64
    pairs, same = make_pairs(images, y, 40, random_state=0)
    assert SiameseVerifier(**options).fit(pairs, same).n_features_in_ == 64
    # A control: for 2-D X, scikit-learn's validate_data sets it the same way.
    assert SiameseEmbedder(**options).fit(X, y).n_features_in_ == 64
