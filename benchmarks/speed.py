"""Training throughput: sksiamese against a plain PyTorch loop and against
pytorch-metric-learning, on the same data, network, loss and batches.

Data: Omniglot ``background_small1`` at 28x28. Network: the default ConvNet
(4 blocks of 64 channels, linear to 64, L2-normalised). Batches: 32 classes x 4
images from the same class-balanced sampler, the same seed and number of steps
in every contender. Optimiser: Adam at a constant 3e-3. Each contender runs
``--repeats`` times; the figures are medians. Images per second count training
batches only: sksiamese's time is the sum of skorch's epoch durations, which
include its callbacks and per-batch bookkeeping; the post-training calibration
is reported apart.

Run: ``python benchmarks/speed.py [--steps 200] [--repeats 3]``
"""

import argparse
import time

import numpy as np
import torch
from _omniglot_data import data_home
from skorch.dataset import Dataset

from sksiamese import SiameseEmbedder
from sksiamese._batches import ClassBalancedBatches
from sksiamese.datasets import fetch_omniglot
from sksiamese.losses import ContrastiveLoss, TripletLoss
from sksiamese.modules import ConvBranch

P, K, LR, MARGIN = 32, 4, 3e-3, 0.5


def batches(X, codes, seed=0):
    return ClassBalancedBatches(
        Dataset(X, codes), 128, classes_per_batch=P, samples_per_class=K, seed=seed
    )


def plain_loop(X, codes, loss_fn, epochs):
    """The loop a user would write by hand; returns images per second."""
    torch.manual_seed(0)
    model = ConvBranch((28, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    iterator, images, start = batches(X, codes), 0, time.perf_counter()
    for _ in range(epochs):
        for Xb, yb in iterator:
            optimizer.zero_grad()
            loss = loss_fn(model(Xb), yb)
            loss.backward()
            optimizer.step()
            images += len(yb)
    return images / (time.perf_counter() - start)


def pml_loss(name):
    from pytorch_metric_learning import losses, miners

    # Batch-hard mining for both, as sksiamese's defaults.
    miner = miners.BatchHardMiner()
    if name == "triplet":
        loss = losses.TripletMarginLoss(margin=MARGIN)
    else:
        loss = losses.ContrastiveLoss(pos_margin=0, neg_margin=MARGIN)

    def loss_fn(embeddings, labels):
        return loss(embeddings, labels, miner(embeddings, labels))

    return loss_fn


def ours(name):
    return TripletLoss(MARGIN) if name == "triplet" else ContrastiveLoss(MARGIN)


def sksiamese_fit(X, y, name, epochs):
    embedder = SiameseEmbedder(
        loss=name,
        margin=MARGIN,
        lr=LR,
        lr_schedule="constant",
        max_epochs=epochs,
        classes_per_batch=P,
        samples_per_class=K,
        device="cpu",
        random_state=0,
    )
    start = time.perf_counter()
    embedder.fit(X, y)
    total = time.perf_counter() - start
    history = embedder.net_.history
    training = sum(history[:, "dur"])
    images = sum(sum(history[:, "batches", :, "train_batch_size"], []))
    return images / training, total - training


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = fetch_omniglot("background_small1", data_home=data_home(args.data_home), image_size=28)
    X, y = data.data, data.target
    codes = np.unique(y, return_inverse=True)[1]
    steps = args.epochs * len(batches(X, codes))
    print(f"{len(X)} images, {steps} steps of {P}x{K}, {torch.get_num_threads()} threads")
    summary = {}
    for name in ("triplet", "contrastive"):
        rates = {"sksiamese": [], "plain torch": [], "pytorch-metric-learning": []}
        overhead = []
        for _ in range(args.repeats):
            rate, after = sksiamese_fit(X, y, name, args.epochs)
            rates["sksiamese"].append(rate)
            overhead.append(after)
            rates["plain torch"].append(plain_loop(X, codes, ours(name), args.epochs))
            rates["pytorch-metric-learning"].append(
                plain_loop(X, codes, pml_loss(name), args.epochs)
            )
        medians = {key: float(np.median(value)) for key, value in rates.items()}
        summary[name] = medians
        print(f"\nloss={name!r}: images per second (median of {args.repeats})")
        for key, value in medians.items():
            print(f"  {key:<26}{value:>8.0f}")
        print(
            f"  sksiamese after-training work (embedding, calibration): {np.median(overhead):.1f} s"
        )
        print(
            f"  ratio vs plain torch: {medians['sksiamese'] / medians['plain torch']:.2f}; "
            f"vs pytorch-metric-learning: "
            f"{medians['sksiamese'] / medians['pytorch-metric-learning']:.2f}"
        )
    plain = np.mean([m["sksiamese"] / m["plain torch"] for m in summary.values()])
    pml = np.mean([m["sksiamese"] / m["pytorch-metric-learning"] for m in summary.values()])
    print(f"\nratio vs plain torch: {plain:.2f}; ratio vs pytorch-metric-learning: {pml:.2f}")


if __name__ == "__main__":
    main()
