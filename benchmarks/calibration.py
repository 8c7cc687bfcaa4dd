"""Calibration of ``SiameseVerifier.predict_proba`` on pairs of new characters.

Development data only: a verifier is trained on pairs of 70% of the
``background_small1`` characters and its probabilities of "same" are scored
by the expected calibration error (10 bins) on pairs of the other 30% (same
alphabets, new characters) and of the ``background_small2`` alphabets that
``background_small1`` lacks (new alphabets). Beside the verifier's own
calibration (Platt scaling on its held-out pairs) are sigmoids fitted on the
scores of its training pairs: without a penalty, and with scikit-learn's
default L2 penalty (``C=1``, the calibration before issue 12).

Run: ``SKSIAMESE_DATA=... python benchmarks/calibration.py [--seeds 0 1]``
"""

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression

from sksiamese import SiameseVerifier
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import expected_calibration_error
from sksiamese.pairs import make_pairs


def main(seeds):
    background = fetch_omniglot("background_small1", image_size=28)
    task = fetch_omniglot("background_small2", image_size=28)
    new = ~np.isin(task.alphabet, np.unique(background.alphabet))
    print(
        "seed | test pairs | best epoch | held-out Platt | L2 on training | no penalty on training"
    )
    for seed in seeds:
        rng = np.random.RandomState(seed)
        characters = np.unique(background.target)
        test_characters = rng.choice(characters, int(0.3 * len(characters)), replace=False)
        train = ~np.isin(background.target, test_characters)
        pairs, same = make_pairs(
            background.data[train], background.target[train], 4000, random_state=seed
        )
        verifier = SiameseVerifier(max_epochs=8, random_state=seed).fit(pairs, same)
        train_scores = verifier.decision_function(pairs)[:, None]
        penalised = LogisticRegression().fit(train_scores, same)
        unpenalised = LogisticRegression(C=np.inf).fit(train_scores, same)
        tests = {
            "same alphabets, new characters": (
                background.data[~train],
                background.target[~train],
            ),
            "new alphabets": (task.data[new], task.target[new]),
        }
        for name, (X, y) in tests.items():
            test_pairs, test_same = make_pairs(X, y, 4000, random_state=seed + 10)
            scores = verifier.decision_function(test_pairs)[:, None]
            eces = [
                expected_calibration_error(test_same, proba[:, 1])
                for proba in (
                    verifier.predict_proba(test_pairs),
                    penalised.predict_proba(scores),
                    unpenalised.predict_proba(scores),
                )
            ]
            figures = " | ".join(f"{ece:.3f}" for ece in eces)
            print(f"{seed} | {name} | {verifier.best_epoch_} | {figures}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    main(parser.parse_args().seeds)
