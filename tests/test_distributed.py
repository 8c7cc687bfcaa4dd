"""Data-parallel training: two gloo processes on the CPU against one process on the same batches.

The two processes start once (spawned, as ``torchrun`` would start them) and
run every check; each test reads its part of what they saved.
"""

import contextlib
import datetime
import faulthandler
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from sksiamese import SiameseEmbedder
from sksiamese._distributed import combine_gradients, gather_batch
from sksiamese.datasets import load_images
from sksiamese.losses import BCEPairLoss, ContrastiveLoss, EmbeddingLoss, TripletLoss
from sksiamese.modules import MLPBranch

pytestmark = pytest.mark.slow  # two processes start once, in about 20 s

# pytorch-metric-learning comes with the test extra; without it, its case only is left out.
HAS_PML = importlib.util.find_spec("pytorch_metric_learning") is not None
LOSSES = ("contrastive", "triplet", "bce") + (("pml",) if HAS_PML else ())
# Each process's share of the global batch: 2 of its 4 classes, 4 samples each.
SHARE = 8
FIT = dict(max_epochs=3, classes_per_batch=4, device="cpu", random_state=0)
# Trained to the end with SGD: Adam divides by a gradient's running size, so a
# parameter whose gradient is zero but for rounding (the last bias, which no
# distance sees) would move by the learning rate in the rounding's direction.
TRAINED = dict(FIT, early_stopping=False, optimizer=torch.optim.SGD, lr=0.05)


class NormedBranch(torch.nn.Module):
    """A branch with batch norm, whose running statistics each process updates."""

    def __init__(self, n_features=64):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU()
        )
        self.out = torch.nn.Linear(32, 16)

    def forward(self, X):
        return self.out(self.layers(X))


class StopFit(Exception):
    pass


class StopAtEpoch(Callback):
    """Stops a fit as it starts epoch ``epoch``, as a kill would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise StopFit


def global_batch():
    X, y = load_digits(return_X_y=True)
    rows = np.concatenate([np.flatnonzero(y == digit)[:4] for digit in range(4)])
    return torch.as_tensor(X[rows] / 16, dtype=torch.float32), torch.as_tensor(y[rows])


def fit_data():
    X, y = load_digits(return_X_y=True)
    rows = np.concatenate([np.flatnonzero(y == digit)[:30] for digit in range(10)])
    return (X[rows] / 16).astype(np.float32), y[rows]


def criterion(name):
    torch.manual_seed(1)  # the Koch head's initial weights
    if name == "pml":
        from pytorch_metric_learning import losses, miners

        return EmbeddingLoss(losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner())
    return {
        "contrastive": ContrastiveLoss(margin=0.5),
        "triplet": TripletLoss(margin=0.5),
        "bce": BCEPairLoss(embedding_dim=16),
    }[name]


def loss_and_gradients(name, rank=None):
    """The loss of the global batch and the gradients of every parameter.

    ``rank`` None: one process on the whole batch; else that process's share,
    gathered as a data-parallel fit gathers it.
    """
    X, y = global_batch()
    if rank is not None:
        X, y = X[rank * SHARE : (rank + 1) * SHARE], y[rank * SHARE : (rank + 1) * SHARE]
    torch.manual_seed(0)
    module, loss_fn = MLPBranch(n_features=64, embedding_dim=16), criterion(name)
    loss = loss_fn(*gather_batch(module(X), y))
    loss.backward()
    combine_gradients(module.parameters(), loss_fn.parameters())
    return loss.item(), [p.grad.clone() for p in [*module.parameters(), *loss_fn.parameters()]]


def write_digit_files(folder):
    """The first 12 images of each digit as 8x8 PNG files, one folder per class."""
    X, y = load_digits(return_X_y=True)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True)
        for i, row in enumerate(X[y == digit][:12]):
            pixels = (row.reshape(8, 8) * 255 / 16).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / str(digit) / f"{i:02d}.png")


def run_checks(folder):
    """What one process of the pair computes and returns, for every test."""
    rank = dist.get_rank()
    results = {"losses": {name: loss_and_gradients(name, rank) for name in LOSSES}}
    X, y = fit_data()
    results["embeddings"] = SiameseEmbedder(**TRAINED).fit(X, y).transform(X)
    results["validation_scores"] = SiameseEmbedder(**FIT).fit(X, y).validation_scores_
    normed = SiameseEmbedder(**TRAINED, module=NormedBranch).fit(X, y)
    results["normed"] = (normed.transform(X), normed.net_.module_.layers[1].running_var)
    # Images: the default ConvBranch, whose batch norm normalises each share by
    # itself, so the files are compared with the array in the same two processes.
    files = load_images(folder / "digits", image_size=8, decode=False)
    files.data.num_workers = 1
    array = files.data.to_array()
    results["files"] = [
        SiameseEmbedder(**TRAINED, augment=False).fit(data, files.target).transform(data)
        for data in (files.data, array)
    ]
    # Checkpoints: process 0 writes them, every process resumes from them.
    saved = dict(TRAINED, checkpoint_dir=folder / "checkpoints")
    first = SiameseEmbedder(**saved).fit(X, y)
    results["resumed"] = (first.transform(X), SiameseEmbedder(**saved).fit(X, y).transform(X))
    results["checkpoints"] = len(list((folder / "checkpoints").glob("*.ckpt")))
    # A fit stopped after 2 of 4 epochs, then resumed, with augmentation and
    # shares of unequal sizes (a class of 2 images): each process's
    # generators must come back as its own.
    few = np.flatnonzero(files.target == 0)[2:]
    images, labels = np.delete(array, few, axis=0), np.delete(files.target, few)
    stopping = dict(FIT, early_stopping=False, max_epochs=4, checkpoint_dir=folder / "stopped")
    uninterrupted = SiameseEmbedder(**{**stopping, "checkpoint_dir": None}).fit(images, labels)
    with contextlib.suppress(StopFit):
        SiameseEmbedder(**stopping, callbacks=[StopAtEpoch(3)]).fit(images, labels)
    resumed = SiameseEmbedder(**stopping).fit(images, labels)
    results["stopped"] = (uninterrupted.transform(images), resumed.transform(images))
    errors = {}
    for case, (X_case, params) in {
        "indivisible": (X, {**FIT, "classes_per_batch": 3}),
        "disagree": (X + rank, FIT),
        "unseeded": (X, {**FIT, "random_state": None}),
    }.items():
        try:
            SiameseEmbedder(**params).fit(X_case, y)
        except ValueError as error:
            errors[case] = str(error)
    results["errors"] = errors
    return results


def _process(rank, folder):
    # Each process's stderr and, should it crash, the Python stack of every
    # thread go to a log (open until the process ends) that the fixture shows
    # when a process fails.
    log = open(os.path.join(folder, f"{rank}.log"), "w")
    os.dup2(log.fileno(), 2)
    faulthandler.enable(file=log, all_threads=True)
    # A file rendezvous: no port to pick, which another test's process could take.
    dist.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        torch.save(run_checks(Path(folder)), os.path.join(folder, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # Once torch._dynamo is imported (an optimizer step imports it), torch 2.13
    # keeps gloo's threads past destroy_process_group, and the interpreter's
    # exit then aborts now and then ("terminate called without an active
    # exception"), after every result is saved. Leave without that teardown
    # (and without atexit hooks); drop this once torch joins those threads.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _log(folder, rank):
    """The end of a process's log, without faulthandler's list of extension modules."""
    path = folder / f"{rank}.log"
    if not path.exists():  # the process failed before opening it
        return "(no log)"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("Extension modules"))[-4000:]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    write_digit_files(folder / "digits")
    try:
        mp.start_processes(_process, args=(str(folder),), nprocs=2, start_method="spawn")
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
        logs = "\n".join(f"--- process {rank} ---\n{_log(folder, rank)}" for rank in range(2))
        pytest.fail(f"{error}\n{logs}")
    return [torch.load(folder / f"{rank}.pt", weights_only=False) for rank in range(2)]


@pytest.mark.parametrize("name", LOSSES)
def test_distributed_loss_and_gradients_equal_one_process(two_processes, name):
    loss, grads = loss_and_gradients(name)
    for process in two_processes:
        process_loss, process_grads = process["losses"][name]
        assert process_loss == pytest.approx(loss, rel=1e-6)
        for grad, process_grad in zip(grads, process_grads, strict=True):
            torch.testing.assert_close(process_grad, grad, rtol=1e-5, atol=1e-6)


def test_distributed_fit_equals_one_process(two_processes):
    X, y = fit_data()
    trained = SiameseEmbedder(**TRAINED).fit(X, y)
    selected = SiameseEmbedder(**FIT).fit(X, y)
    first, second = two_processes
    np.testing.assert_array_equal(first["embeddings"], second["embeddings"])
    np.testing.assert_allclose(first["embeddings"], trained.transform(X), atol=1e-5)
    # Decided once: process 1 never scored, it took process 0's scores.
    assert first["validation_scores"] == second["validation_scores"]
    np.testing.assert_allclose(first["validation_scores"], selected.validation_scores_, atol=1e-9)


def test_distributed_fit_on_image_files_equals_the_fit_on_their_array(two_processes):
    (first, first_array), (second, second_array) = (p["files"] for p in two_processes)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, first_array)
    np.testing.assert_array_equal(second, second_array)


def test_distributed_fit_resumes_from_the_checkpoints_of_process_0(two_processes):
    (first, first_again), (second, second_again) = (p["resumed"] for p in two_processes)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_again, first)
    np.testing.assert_array_equal(second_again, second)
    # ... as the fit without checkpoints, from one file for its one phase.
    np.testing.assert_array_equal(first, two_processes[0]["embeddings"])
    assert [p["checkpoints"] for p in two_processes] == [1, 1]


def test_distributed_fit_stopped_and_resumed_equals_the_uninterrupted_one(two_processes):
    for process in two_processes:
        uninterrupted, resumed = process["stopped"]
        np.testing.assert_array_equal(resumed, uninterrupted)


def test_distributed_batch_norm_statistics_are_the_same_on_every_process(two_processes):
    # Fails if each process keeps the running statistics of its own shares:
    # the processes would end with different networks.
    (first, first_var), (second, second_var) = (p["normed"] for p in two_processes)
    assert torch.equal(first_var, second_var)
    np.testing.assert_array_equal(first, second)


def test_distributed_bad_input_is_a_clear_error(two_processes):
    for process in two_processes:
        errors = process["errors"]
        assert "2 processes cannot share batches of 3 classes" in errors["indivisible"]
        assert "were given different data" in errors["disagree"]
        assert "needs an int random_state" in errors["unseeded"]
