"""Training throughput: sksiamese against a plain PyTorch loop and against
pytorch-metric-learning, on the same data, network, loss and batches.

Data: Omniglot ``background_small1`` at 28x28. Network: the default ConvNet
(4 blocks of 64 channels, linear to 64, L2-normalised). Batches: 32 classes x 4
images from the same class-balanced sampler, the same seed and number of steps
in every contender. Optimiser: Adam at a constant 3e-3. Each contender runs
``--repeats`` times; the figures are medians. Images per second count training
batches only: sksiamese's time is the sum of skorch's epoch durations, which
include its callbacks and per-batch bookkeeping; its "whole fit" rate divides
the same images by the time of ``fit`` as a whole (validation, the work after
the epochs: collapse check, calibration).

On a GPU (``--device cuda``) the training data is kept on the device, and two
more variants of the plain loop are timed: bf16 autocast, and bf16 with
``channels_last`` memory format, which tell whether mixed precision pays for
this network; sksiamese then also runs with ``accelerator=Accelerator(
mixed_precision="bf16")``.

Run: ``python benchmarks/speed.py [--epochs 3] [--repeats 3] [--device cpu]``
"""

import argparse
import contextlib
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


def batches(X, codes, seed=0, device=None):
    return ClassBalancedBatches(
        Dataset(X, codes), 128, classes_per_batch=P, samples_per_class=K, seed=seed, device=device
    )


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_loop(X, codes, loss_fn, epochs, device="cpu", bf16=False, channels_last=False):
    """The loop a user would write by hand; returns images per second."""
    torch.manual_seed(0)
    model = ConvBranch((28, 28)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else None
    iterator, images = batches(X, codes, device=device), 0
    synchronize(device)
    start = time.perf_counter()
    for _ in range(epochs):
        for Xb, yb in iterator:
            if channels_last:
                Xb = Xb.unsqueeze(1).contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad()
            with autocast or contextlib.nullcontext():
                embeddings = model(Xb)
            loss = loss_fn(embeddings.float(), yb)
            loss.backward()
            optimizer.step()
            images += len(yb)
    synchronize(device)
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


def sksiamese_fit(X, y, name, epochs, device="cpu", bf16=False):
    accelerator = None
    if bf16:
        from accelerate import Accelerator

        accelerator = Accelerator(mixed_precision="bf16")
    embedder = SiameseEmbedder(
        # As in the plain loop: loss, optimiser, batches, device, seed.
        loss=name,
        margin=MARGIN,
        lr=LR,
        max_epochs=epochs,
        classes_per_batch=P,
        samples_per_class=K,
        device=device,
        accelerator=accelerator,
        random_state=0,
        # sksiamese's extras, switched off: the plain loop has none of them.
        lr_schedule="constant",
        augment=False,
        inference_views=1,
    )
    start = time.perf_counter()
    embedder.fit(X, y)
    total = time.perf_counter() - start
    history = embedder.net_.history
    training = sum(history[:, "dur"])
    images = sum(sum(history[:, "batches", :, "train_batch_size"], []))
    return images / training, images / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device, gpu = args.device, args.device.startswith("cuda")
    data = fetch_omniglot("background_small1", data_home=data_home(args.data_home), image_size=28)
    X, y = data.data, data.target
    codes = np.unique(y, return_inverse=True)[1]
    steps = args.epochs * len(batches(X, codes))
    where = torch.cuda.get_device_name() if gpu else f"{torch.get_num_threads()} threads"
    print(f"{len(X)} images, {steps} steps of {P}x{K}, on {device} ({where})")
    summary = {}
    for name in ("triplet", "contrastive"):
        rates = {
            "sksiamese": [],
            "sksiamese, whole fit": [],
            "plain torch": [],
            "pytorch-metric-learning": [],
        }
        if gpu:
            rates.update({"sksiamese bf16": [], "plain bf16": [], "plain bf16 channels_last": []})
        outside = []  # the share of each fit's time spent outside its epochs
        for _ in range(args.repeats):
            rate, whole = sksiamese_fit(X, y, name, args.epochs, device)
            rates["sksiamese"].append(rate)
            rates["sksiamese, whole fit"].append(whole)
            outside.append(1 - whole / rate)
            rates["plain torch"].append(plain_loop(X, codes, ours(name), args.epochs, device))
            rates["pytorch-metric-learning"].append(
                plain_loop(X, codes, pml_loss(name), args.epochs, device)
            )
            if gpu:
                rates["sksiamese bf16"].append(
                    sksiamese_fit(X, y, name, args.epochs, device, bf16=True)[0]
                )
                rates["plain bf16"].append(
                    plain_loop(X, codes, ours(name), args.epochs, device, bf16=True)
                )
                rates["plain bf16 channels_last"].append(
                    plain_loop(
                        X, codes, ours(name), args.epochs, device, bf16=True, channels_last=True
                    )
                )
        medians = {key: float(np.median(value)) for key, value in rates.items()}
        medians["outside"] = float(np.median(outside))
        summary[name] = medians
        print(f"\nloss={name!r}: images per second (median of {args.repeats})")
        for key in rates:
            print(f"  {key:<26}{medians[key]:>8.0f}")
        print(f"  share of fit time outside the epochs: {medians['outside']:.1%}")
        print(
            f"  ratio vs plain torch: {medians['sksiamese'] / medians['plain torch']:.2f} "
            f"(whole fit: {medians['sksiamese, whole fit'] / medians['plain torch']:.2f}); "
            f"vs pytorch-metric-learning: "
            f"{medians['sksiamese'] / medians['pytorch-metric-learning']:.2f}"
        )
    plain = np.mean([m["sksiamese"] / m["plain torch"] for m in summary.values()])
    whole = np.mean([m["sksiamese, whole fit"] / m["plain torch"] for m in summary.values()])
    pml = np.mean([m["sksiamese"] / m["pytorch-metric-learning"] for m in summary.values()])
    print(
        f"\nratio vs plain torch: epochs {plain:.2f}, whole fit {whole:.2f}; "
        f"ratio vs pytorch-metric-learning: {pml:.2f}"
    )
    for name, medians in summary.items():
        print(  # one line per loss, for scripts
            f"loss={name} images_per_s={medians['sksiamese']:.0f} "
            f"fit_images_per_s={medians['sksiamese, whole fit']:.0f} "
            f"plain_images_per_s={medians['plain torch']:.0f} "
            f"pml_images_per_s={medians['pytorch-metric-learning']:.0f} "
            f"fit_vs_plain={medians['sksiamese, whole fit'] / medians['plain torch']:.3f} "
            f"outside_epochs_share={medians['outside']:.3f}"
        )


if __name__ == "__main__":
    main()
