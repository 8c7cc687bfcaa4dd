"""Signature verification against K references of the claimed writer, on CEDAR.

A questioned signature is checked against K genuine signatures of the writer
it claims to be (a specimen card), K = 1, 5 and 12. CEDAR, images and
preprocessing as in ``benchmarks/signatures.py`` (48x96, aspect kept, ink = 1,
``background='remove'``: the option that benchmark chose on writers 31-40).

Protocol. A ``SiameseEmbedder`` (default parameters) trains on writers 1-30,
each writer's genuine signatures one class and their forgeries another. For
each writer of a part and each of ``--draws`` draws, K of their 24 genuine
signatures are enrolled as references (``ReferenceSet``); the questioned
samples are the writer's other 24 - K genuine signatures and all 24 skilled
forgeries of them. Claims are scored by
``SiameseVerifier(embedder=FrozenEstimator(embedder))`` with each
``aggregation`` (mean, best, prototype) and ``normalization`` (by the
references' spread, or none); the pair chosen for each K is the one with the
lowest EER on writers 31-40, which also calibrate the verifier and set the
threshold at a 1% false-accept rate. Writers 41-55, never seen, are read once,
for the final table.

Baselines, scored in the same run on the same claims: pixel distance (the
ink images compared as they are, with the same aggregations and
normalisations, chosen on writers 31-40 the same way) and paper shade (the
difference of median pixels of the raw scans, which separates CEDAR's
genuine scans from its forgeries' by the paper; what not to learn).

Reported on writers 41-55, the draws pooled: ROC AUC, equal error rate, the
false-reject rate at a 1% false-accept rate on the test claims themselves,
and the false accept and false reject rates at the threshold chosen on
writers 31-40; 95% intervals from a bootstrap over the 15 test writers.

Cost: the embedder trains in about 7 minutes on 2 CPU cores; scoring takes
about a minute.

A lever, chosen on writers 31-40 only: ``--start-from omniglot`` first
trains an embedder on Omniglot's 30 background alphabets (964 characters,
drawn at 48x48 and centred on a 48x96 page, so that the network reads
signatures at their own size), then fine-tunes its branch on writers 1-30
(``SiameseEmbedder(module=prior.net_.module_)``): a handwriting prior.
``--development`` stops after the writers 31-40 table and prints its
summary; writers 41-55 are then not scored.

Run: ``python benchmarks/signature_references.py [--seed 0] [--draws 5]
[--start-from {scratch,omniglot}] [--prior-epochs 3] [--development]``
"""

import argparse
import functools
import itertools
import time

import numpy as np
import torch
from _omniglot_data import background_folder, data_home
from signatures import TEST, TRAIN, TUNE, bootstrap, load
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score

from sksiamese import ReferenceSet, SiameseEmbedder, SiameseVerifier
from sksiamese._claims import AGGREGATIONS, ClaimRule
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import equal_error_rate, false_accept_threshold, false_reject_rate_at
from sksiamese.similarity import EuclideanSimilarity

IMAGE_OPTION = ((48, 96), True)
REFERENCES = (1, 5, 12)
RULES = list(itertools.product(AGGREGATIONS, ("references", None)))


def omniglot_prior(max_epochs, seed):
    """An embedder trained on Omniglot's background alphabets, on pages of the signatures' size.

    Each 48x48 character (ink = 1) is centred on a 48x96 page, as
    ``load_images(keep_aspect=True)`` letterboxes a square image.
    """
    home = data_home()
    background_folder(home)
    characters = fetch_omniglot("background", data_home=home, image_size=IMAGE_OPTION[0][0])
    height, width = IMAGE_OPTION[0]
    margin = (width - height) // 2
    pages = np.pad(characters.data, ((0, 0), (0, 0), (margin, width - height - margin)))
    prior = SiameseEmbedder(max_epochs=max_epochs, random_state=seed)
    return prior.fit(pages, characters.target)


def writer_claims(X, writers, genuine, chosen, k, draws, seed):
    """Claims of every chosen writer over ``draws`` draws of K references.

    Returns ``(claims, same, owner)``: the questioned signature then the K
    references, 1 for a genuine questioned signature, and its writer.
    """
    rng = np.random.default_rng([seed, k])
    claims, same, owner = [], [], []
    for _ in range(draws):
        references = ReferenceSet()
        questioned = []
        for writer in chosen:
            real = rng.permutation(np.flatnonzero((writers == writer) & genuine))
            forged = np.flatnonzero((writers == writer) & ~genuine)
            references.enrol(X[real[:k]], [writer] * k)
            questioned.append(np.r_[real[k:], forged])
        questioned = np.concatenate(questioned)
        claims.append(references.claims(X[questioned], writers[questioned]))
        same.append(genuine[questioned].astype(int))
        owner.append(writers[questioned])
    return np.concatenate(claims), np.concatenate(same), np.concatenate(owner)


def pixel_members(claims):
    """The raw images of each claim as flat vectors, compared as embeddings are."""
    return torch.from_numpy(claims.reshape(*claims.shape[:2], -1))


def pixel_rule(tune_claims, aggregation, normalization):
    """The verifier's rule for pixels, its spread floor fitted on the writers 31-40 claims."""
    members = pixel_members(tune_claims)
    return ClaimRule.fitted(aggregation, normalization, EuclideanSimilarity(), members)


def pixel_scores(rule, claims):
    """Claims scored on their raw images by ``rule``."""
    return rule.scores(EuclideanSimilarity(), pixel_members(claims))


def paper_shade(claims):
    """Minus the mean difference of median pixels of the questioned and each reference."""
    medians = np.median(claims.reshape(*claims.shape[:2], -1), axis=2)
    return -np.abs(medians[:, :1] - medians[:, 1:]).mean(1)


def figures(same, scores, threshold, rows):
    """ROC AUC, EER, FRR at 1% FAR, and FAR and FRR at the threshold from writers 31-40."""
    same, scores = same[rows], scores[rows]
    accepted = scores >= threshold
    return np.array(
        [
            roc_auc_score(same, scores),
            equal_error_rate(same, scores),
            false_reject_rate_at(same, scores, false_accept_rate=0.01),
            accepted[same == 0].mean(),
            1 - accepted[same == 1].mean(),
        ]
    )


def rule_name(rule):
    aggregation, normalization = rule
    return f"{aggregation}{', normalised' if normalization else ''}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="a shorter fit, to try the script out"
    )
    parser.add_argument("--start-from", choices=("scratch", "omniglot"), default="scratch")
    parser.add_argument("--prior-epochs", type=int, default=3)
    parser.add_argument(
        "--development", action="store_true", help="stop after writers 31-40; 41-55 not scored"
    )
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"torch device: {device}")
    X, writers, genuine = load(*IMAGE_OPTION)
    raw = load(*IMAGE_OPTION, background="keep")[0]
    train = np.isin(writers, TRAIN)
    labels = np.where(genuine, writers, -writers)[train]
    start = time.perf_counter()
    params = {"random_state": args.seed}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    if args.start_from == "omniglot":
        prior = omniglot_prior(args.prior_epochs, args.seed)
        print(f"Omniglot prior trained in {time.perf_counter() - start:.0f} s")
        params["module"] = prior.net_.module_
    embedder = SiameseEmbedder(**params).fit(X[train], labels)
    fit_seconds = time.perf_counter() - start
    print(
        f"SiameseEmbedder ({args.start_from}) trained on writers 1-30; {fit_seconds:.0f} s in all"
    )
    frozen = FrozenEstimator(embedder)

    print("\nSelection on writers 31-40 (EER, draws pooled)")
    print(f"{'K':>3} | {'rule':>22} | {'SiameseEmbedder':>15} | {'pixel distance':>14}")
    results, summary, development = [], [], []
    for k in REFERENCES:
        tune = writer_claims(X, writers, genuine, TUNE, k, args.draws, args.seed)
        rules = RULES if k > 1 else [("mean", None)]  # one reference: all rules agree

        verifiers = {
            rule: SiameseVerifier(embedder=frozen, aggregation=rule[0], normalization=rule[1]).fit(
                tune[0], tune[1]
            )
            for rule in rules
        }
        ours_eers = {
            rule: equal_error_rate(tune[1], verifiers[rule].decision_function(tune[0]))
            for rule in rules
        }
        pixel_rules = {rule: pixel_rule(tune[0], *rule) for rule in rules}
        pixel_eers = {
            rule: equal_error_rate(tune[1], pixel_scores(pixel_rules[rule], tune[0]))
            for rule in rules
        }
        ours, pixels = min(ours_eers, key=ours_eers.get), min(pixel_eers, key=pixel_eers.get)
        for rule in rules:
            print(
                f"{k:>3} | {rule_name(rule):>22} | {ours_eers[rule]:>15.2%} | "
                f"{pixel_eers[rule]:>14.2%}"
            )
        development.append((k, ours_eers[ours], pixel_eers[pixels]))
        if args.development:
            continue
        test = writer_claims(X, writers, genuine, TEST, k, args.draws, args.seed + 1)
        tune_raw = writer_claims(raw, writers, genuine, TUNE, k, args.draws, args.seed)
        test_raw = writer_claims(raw, writers, genuine, TEST, k, args.draws, args.seed + 1)
        model = verifiers[ours]
        methods = [
            (
                f"SiameseEmbedder ({rule_name(ours)})",
                model.predict_proba(tune[0])[:, 1],
                model.predict_proba(test[0])[:, 1],
            ),
            (
                f"pixel distance ({rule_name(pixels)})",
                pixel_scores(pixel_rules[pixels], tune[0]),
                pixel_scores(pixel_rules[pixels], test[0]),
            ),
            ("paper shade (raw scans)", paper_shade(tune_raw[0]), paper_shade(test_raw[0])),
        ]
        for name, tune_scores, test_scores in methods:
            threshold = false_accept_threshold(tune[1], tune_scores, false_accept_rate=0.01)
            statistic = functools.partial(figures, test[1], test_scores, threshold)
            values = statistic(np.arange(len(test[1])))
            low, high = bootstrap(statistic, test[2])
            results.append((k, name, values, low, high, len(test[1])))
        summary.append((k, results[-3][2], results[-2][2]))  # ours, pixel distance

    if args.development:
        for k, ours, pixels in development:
            print(
                f"part=writers_31_40 start_from={args.start_from} references={k} "
                f"eer={ours:.4f} pixel_eer={pixels:.4f} fit_s={fit_seconds:.0f}"
            )
        return
    print(
        "\nCEDAR, background removed: embedder trained on writers 1-30; rule, calibration and "
        "threshold chosen on writers 31-40; tested on writers 41-55 (never seen), "
        f"{args.draws} draws of the references pooled; 95% intervals over test writers"
    )
    columns = ["ROC AUC", "EER", "FRR @ FAR 1%", "FAR, 31-40 threshold", "FRR, 31-40 threshold"]
    print(f"{'K':>3} | {'method':>44} | " + " | ".join(f"{c:>21}" for c in columns) + " | claims")
    for k, name, values, low, high, n_claims in results:
        cells = [
            f"{v:.4f} [{lo:.3f}, {hi:.3f}]" if i == 0 else f"{v:.2%} [{lo:.1%}, {hi:.1%}]"
            for i, (v, lo, hi) in enumerate(zip(values, low, high, strict=True))
        ]
        print(f"{k:>3} | {name:>44} | " + " | ".join(f"{c:>21}" for c in cells) + f" | {n_claims}")
    print(f"(embedder fit: {fit_seconds:.0f} s on {device})")
    for k, ours, pixels in summary:
        print(
            f"references={k} eer={ours[1]:.4f} frr_at_far1={ours[2]:.4f} auc={ours[0]:.4f} "
            f"pixel_eer={pixels[1]:.4f} pixel_frr_at_far1={pixels[2]:.4f} fit_s={fit_seconds:.0f}"
        )


if __name__ == "__main__":
    main()
