"""Choose defaults on validation alphabets, never on the official runs.

Trains a :class:`SiameseEmbedder` (rotations as extra classes, 28x28) and
measures 20-way 1-shot accuracy in 200 within-alphabet episodes on alphabets
it never saw:

- ``--setting minimal`` (default): trained on ``background_small1``, measured
  on the alphabets of ``background_small2`` that ``background_small1`` lacks
  (Japanese katakana, Sanskrit, Tagalog);
- ``--setting full``: trained on 25 of the 30 background alphabets, measured
  on the other 5 (drawn once, see ``_omniglot_data.held_out_alphabets``).

Episodes draw their 20 characters from one alphabet, so alphabets of fewer
than 20 characters (Tagalog, Blackfoot, Inuktitut) take no part in them, with
a warning that names them.

The evaluation alphabets, from which the 20 official runs are drawn, are not
touched.

Run: ``python benchmarks/select_omniglot.py [--setting full] '{"loss": "bce"}' ...``
(each argument is one candidate's parameters as JSON; ``"augment"`` may be an
object of :class:`~sksiamese.augmentation.RandomAffine` ranges, such as
``{"rotation": 15, "shear": 0.2, "scale": [0.85, 1.15], "translation": 0.08}``).
``--seeds 2`` fits each candidate with ``random_state`` 0 and 1.
"""

import argparse
import itertools
import json
import time

import numpy as np
from _omniglot_data import background_full, data_home, held_out_alphabets, upright_mask
from sklearn.utils import Bunch

from sksiamese import SiameseEmbedder
from sksiamese.augmentation import RandomAffine
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import one_shot_accuracy


def split(setting, home):
    """Training set (rotations as classes), the set validated on, and its rows to use.

    The rows are the upright images of alphabets the training set lacks.
    """
    if setting == "minimal":
        train = fetch_omniglot("background_small1", data_home=home, image_size=28, rotations=True)
        valid = fetch_omniglot("background_small2", data_home=home, image_size=28)
        return train, valid, ~np.isin(valid.alphabet, np.unique(train.alphabet))
    full = background_full(home, rotations=True)
    held = np.isin(full.alphabet, held_out_alphabets(full.alphabet))
    train = Bunch(data=full.data[~held], target=full.target[~held], alphabet=full.alphabet[~held])
    return train, full, held & upright_mask(full.target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", help="parameters as JSON objects")
    parser.add_argument("--data-home")
    parser.add_argument("--seeds", type=int, default=1, help="fits per candidate")
    parser.add_argument("--setting", choices=["minimal", "full"], default="minimal")
    args = parser.parse_args()
    home = data_home(args.data_home)
    train, valid, unseen = split(args.setting, home)
    # one_shot_accuracy warns about alphabets too small for a 20-way episode.
    print(
        f"training: {len(train.data)} images of {len(np.unique(train.target))} classes; "
        f"validation alphabets: {', '.join(np.unique(valid.alphabet[unseen]))}",
        flush=True,
    )
    for candidate, seed in itertools.product(args.candidates, range(args.seeds)):
        params = json.loads(candidate)
        if isinstance(params.get("augment"), dict):
            params["augment"] = RandomAffine(**params["augment"])
        start = time.perf_counter()
        embedder = SiameseEmbedder(random_state=seed, **params).fit(train.data, train.target)
        seconds = time.perf_counter() - start
        result = one_shot_accuracy(
            embedder,
            valid.data[unseen],
            valid.target[unseen],
            n_way=20,
            k_shot=1,
            n_queries=1,
            n_episodes=200,
            groups=valid.alphabet[unseen],
            random_state=0,
        )
        print(
            f"{candidate} (random_state={seed}): validation 20-way 1-shot "
            f"{result.mean:.1%} +/- {result.ci95:.1%}, "
            f"fit {seconds:.0f} s, final loss {embedder.loss_curve_[-1]:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
