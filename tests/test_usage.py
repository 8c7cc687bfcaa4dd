"""The usage the product card promises, end to end with scikit-learn tools."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksiamese import OneShotClassifier, SiameseEmbedder


@pytest.mark.slow
def test_grid_search_over_loss_and_margin(small):
    X, y = small
    grid = GridSearchCV(
        OneShotClassifier(max_epochs=2, random_state=0),
        {"loss": ["contrastive", "triplet", "bce"], "margin": [0.5, 1.0]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 6
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.embedder_.loss == grid.best_params_["loss"]
    assert grid.score(X, y) > 0.8


def test_pipeline_scaler_embedder_nearest_neighbour(small):
    X, y = small
    pipe = make_pipeline(
        StandardScaler(), SiameseEmbedder(max_epochs=5, random_state=0), KNeighborsClassifier(1)
    ).fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.get_params()["siameseembedder__loss"] == "contrastive"


SENTENCES = [
    ("how do I reset my password", "account"),
    ("I forgot my password and cannot log in", "account"),
    ("change the email address on my account", "account"),
    ("my login does not work anymore", "account"),
    ("when will my parcel arrive", "delivery"),
    ("the package has not been delivered yet", "delivery"),
    ("track the delivery of my order", "delivery"),
    ("my parcel arrived damaged", "delivery"),
    ("I was charged twice for one order", "billing"),
    ("refund the payment for my order", "billing"),
    ("the invoice shows the wrong amount", "billing"),
    ("my card payment was declined", "billing"),
]


def test_pipeline_tfidf_one_shot_classifier_on_sentences():
    texts, labels = map(list, zip(*SENTENCES, strict=True))
    pipe = make_pipeline(
        TfidfVectorizer(), OneShotClassifier(max_epochs=20, classes_per_batch=3, random_state=0)
    ).fit(texts, labels)
    assert pipe.score(texts, labels) == 1.0
    proba = pipe.predict_proba(["I cannot log in to my account"])
    np.testing.assert_allclose(proba.sum(), 1.0)
    assert pipe.predict(["where is my parcel"])[0] == "delivery"


def test_clone_keeps_parameters_and_drops_fitted_state(small):
    X, y = small
    clf = OneShotClassifier(loss="bce", max_epochs=1, module__hidden_sizes=(16,)).fit(X, y)
    copy = clone(clf)
    assert copy.get_params()["module__hidden_sizes"] == (16,)
    assert copy.get_params()["loss"] == "bce"
    assert not hasattr(copy, "embedder_")


def test_set_params_reaches_routed_parameters(small):
    X, y = small
    clf = OneShotClassifier(max_epochs=1).set_params(module__hidden_sizes=(8,), margin=0.3)
    clf.fit(X, y)
    assert clf.embedder_.net_.module_.layers[0].out_features == 8
    assert clf.embedder_.margin == 0.3


def test_cross_val_score(small):
    X, y = small
    scores = cross_val_score(OneShotClassifier(max_epochs=3, random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8


def test_a_text_pipeline_embedder_receives_raw_sentences():
    topics = {
        "space": ["rocket orbit launch", "moon lander orbit", "mars rover launch"],
        "food": ["bread oven flour", "pasta sauce flour", "oven roasted bread"],
        "sport": ["goal striker match", "match referee goal", "striker scores match"],
        "music": ["guitar chord song", "song lyrics chorus", "chorus guitar solo"],
    }
    sentences = [s for topic in topics.values() for s in topic]
    labels = [name for name, topic in topics.items() for _ in topic]
    embedder = make_pipeline(
        TfidfVectorizer(), SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0)
    )
    clf = OneShotClassifier(embedder=embedder).fit(sentences, labels)
    assert clf.predict(["rocket launch to the moon"]).tolist() == ["space"]
    assert clf.predict_proba(["guitar song"]).shape == (1, 4)


def test_a_dataframe_embedder_keeps_the_feature_names(digits):
    import pandas as pd

    X, y, _, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])
    embedder = make_pipeline(
        StandardScaler(), SiameseEmbedder(max_epochs=1, early_stopping=False, random_state=0)
    )
    clf = OneShotClassifier(embedder=embedder).fit(frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    assert clf.predict(frame.iloc[:5]).shape == (5,)
