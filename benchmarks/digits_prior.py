"""Digits from a handwriting prior: fine-tune a network trained on Omniglot.

With five training digits (0-4), no epoch of training from scratch beats the
raw pixels on the new digits (5-9) clearly enough, and the defaults keep the
raw input. Here the network starts instead from an embedder trained on
Omniglot's 30 background alphabets (964 characters, drawn at 8x8 as
scikit-learn's digits are, flattened to 64 features, scaled to [0, 1]), and is
fine-tuned on digits 0-4 (``SiameseEmbedder(module=prior.net_.module_)``).

Reported, for each seed, 5-way 1-shot accuracy on digits 5-9 (never seen) in
200 episodes, the same episodes for every row: the raw pixels, the defaults
trained from scratch, the Omniglot network as it is (no digit seen), and the
Omniglot network fine-tuned with the defaults (its held-out selection may keep
the prior itself, epoch 0). Digits 5-9 are the transfer panel's test part
(``docs/benchmarks.md``): nothing is chosen on them here.

Run: ``python benchmarks/digits_prior.py [--seeds 0 1] [--prior-epochs 10]``
"""

import argparse
import time

import numpy as np
from _omniglot_data import background_folder, data_home
from sklearn.datasets import load_digits
from sklearn.preprocessing import FunctionTransformer

from sksiamese import SiameseEmbedder
from sksiamese._intervals import ci95_half_width
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import one_shot_accuracy


def omniglot_prior(max_epochs, seed):
    """An embedder of 8x8 Omniglot characters as 64 features in [0, 1], like the digits'."""
    home = data_home()
    background_folder(home)
    characters = fetch_omniglot("background", data_home=home, image_size=8)
    X = characters.data.reshape(len(characters.data), -1)
    X = X / X.max()
    embedder = SiameseEmbedder(max_epochs=max_epochs, random_state=seed)
    return embedder.fit(X.astype(np.float32), characters.target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--prior-epochs", type=int, default=10)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    train, new = y < 5, y >= 5
    rows = {}
    print(
        f"{'seed':>4} | {'pixels':>6} | {'scratch':>7} | {'prior':>6} | {'fine-tuned':>10} | epochs"
    )
    for seed in args.seeds:
        start = time.perf_counter()
        prior = omniglot_prior(args.prior_epochs, seed)
        prior_s = time.perf_counter() - start
        models = {
            "pixels": FunctionTransformer(),
            "scratch": SiameseEmbedder(random_state=seed).fit(X[train], y[train]),
            "prior": prior,
            "fine_tuned": SiameseEmbedder(module=prior.net_.module_, random_state=seed).fit(
                X[train], y[train]
            ),
        }
        scores = {
            name: one_shot_accuracy(
                model, X[new], y[new], n_way=5, n_queries=1, n_episodes=200, random_state=seed
            ).episode_scores
            for name, model in models.items()
        }
        rows[seed] = scores
        print(
            f"{seed:>4} | {scores['pixels'].mean():>6.3f} | {scores['scratch'].mean():>7.3f} | "
            f"{scores['prior'].mean():>6.3f} | {scores['fine_tuned'].mean():>10.3f} | "
            f"best epoch (epochs trained): scratch {models['scratch'].best_epoch_} "
            f"({models['scratch'].n_iter_}), fine-tuned {models['fine_tuned'].best_epoch_} "
            f"({models['fine_tuned'].n_iter_}); prior fit {prior_s:.0f} s",
            flush=True,
        )
    print("\nSeeds pooled, paired by episode (95% intervals measure the episodes' noise only)")
    pooled = {name: np.concatenate([rows[s][name] for s in rows]) for name in rows[args.seeds[0]]}
    for name in ("scratch", "prior", "fine_tuned"):
        gain = pooled[name] - pooled["pixels"]
        print(f"{name:>10} minus pixels: {gain.mean():+.3f} ± {ci95_half_width(gain):.3f}")
    print(
        " ".join(f"{name}={values.mean():.4f}" for name, values in pooled.items())
        + f" fine_tuned_minus_pixels={(pooled['fine_tuned'] - pooled['pixels']).mean():.4f}"
    )


if __name__ == "__main__":
    main()
