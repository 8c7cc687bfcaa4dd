"""Input size and stroke-keeping augmentation for signatures: fit cost against error.

Development only: every figure is on writers 31-40; writers 41-55 are not
scored. CEDAR, aspect kept, ink = 1, ``background='remove'`` (as in
``benchmarks/signature_references.py``). For each setting a
``SiameseEmbedder`` (``inference_views=1``: test-time views hurt on the
development writers' signatures) trains on writers 1-30, each writer's
genuine signatures one class and their forgeries another, for
``--max-epochs`` epochs. It is then scored on claims of writers 31-40: a
questioned signature (the writer's other genuine signatures and all 24
skilled forgeries) against K = 1 and K = 5 of the writer's genuine
signatures, over 5 draws of the references, pooled, by the mean distance to
the references (one fixed rule, so that the settings differ by their
training only). Pixel distance at each size is the baseline, on the same
claims.

The settings: no augmentation; the default ``RandomAffine`` (rotation 10
degrees, shear 0.1, scale 0.9-1.1, shift 5%); a smaller affine map (5
degrees, 0.05, 0.95-1.05, 2%); the default map with strokes thickened or
thinned by up to one pixel (``RandomStrokes(stroke_width=1)``); at 32x64
and at 48x96. SigNet's 155x220 has 7.4 times the pixels of 48x96: about
7 times this benchmark's 48x96 fit on a CPU, so it is left to a GPU.

Run: ``python benchmarks/signature_strokes.py [--max-epochs 10] [--seed 0]``
"""

import argparse
import time

import numpy as np
from signature_references import pixel_rule, pixel_scores, writer_claims
from signatures import TRAIN, TUNE, load
from sklearn.frozen import FrozenEstimator

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese.augmentation import RandomAffine, RandomStrokes
from sksiamese.metrics import equal_error_rate

REFERENCES = (1, 5)
SIZES = ((32, 64), (48, 96))
AUGMENTATIONS = {
    "none": False,
    "affine": RandomAffine(),
    "small affine": RandomAffine(rotation=5.0, shear=0.05, scale=(0.95, 1.05), translation=0.02),
    "affine + strokes": RandomStrokes(stroke_width=1),
}


def claim_eers(embedder, claims):
    """EER of the mean distance to the references on each K's claims, and of pixel distance."""
    ours, pixels = {}, {}
    for k, (X, same, _) in claims.items():
        verifier = SiameseVerifier(
            embedder=FrozenEstimator(embedder), aggregation="mean", normalization=None
        ).fit(X, same)
        ours[k] = equal_error_rate(same, verifier.decision_function(X))
        pixels[k] = equal_error_rate(same, pixel_scores(pixel_rule(X, "mean", None), X))
    return ours, pixels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    header = " | ".join(f"EER K={k:<2}" for k in REFERENCES)
    print(f"{'size':>6} | {'augmentation':>16} | {header}")
    for size in SIZES:
        X, writers, genuine = load(size, keep_aspect=True)
        train = np.isin(writers, TRAIN)
        labels = np.where(genuine, writers, -writers)[train]
        claims = {
            k: writer_claims(X, writers, genuine, TUNE, k, draws=5, seed=args.seed)
            for k in REFERENCES
        }
        for name, augment in AUGMENTATIONS.items():
            start = time.perf_counter()
            embedder = SiameseEmbedder(
                augment=augment,
                max_epochs=args.max_epochs,
                inference_views=1,
                random_state=args.seed,
            ).fit(X[train], labels)
            fit_s = time.perf_counter() - start
            ours, pixels = claim_eers(embedder, claims)
            rows.append((size, name, ours, pixels, fit_s))
            cells = " | ".join(f"{ours[k]:>8.2%}" for k in REFERENCES)
            print(f"{size[0]}x{size[1]:<3} | {name:>16} | {cells} | fit {fit_s:.0f} s", flush=True)
        cells = " | ".join(f"{pixels[k]:>8.2%}" for k in REFERENCES)
        print(f"{size[0]}x{size[1]:<3} | {'pixel distance':>16} | {cells}", flush=True)
    print(f"(writers 31-40, {args.max_epochs} epochs, seed {args.seed}, 5 draws of references)")
    for size, name, ours, pixels, fit_s in rows:
        print(
            f"size={size[0]}x{size[1]} augment={name.replace(' + ', '+').replace(' ', '_')} "
            + " ".join(f"eer_k{k}={ours[k]:.4f}" for k in REFERENCES)
            + " "
            + " ".join(f"pixel_eer_k{k}={pixels[k]:.4f}" for k in REFERENCES)
            + f" fit_s={fit_s:.0f}"
        )


if __name__ == "__main__":
    main()
