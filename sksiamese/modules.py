"""Default twin branches.

The twin network is a single branch applied to both inputs (shared weights);
these are the branches :class:`~sksiamese.SiameseEmbedder` picks from the shape
of ``X`` when ``module=None``. Any ``torch.nn.Module`` mapping a batch of
samples to a batch of vectors can replace them.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLPBranch", "ConvBranch"]


class MLPBranch(nn.Module):
    """Fully connected branch for feature vectors ``(n, d)``.

    Parameters
    ----------
    n_features : int
        Size of the input vectors.
    embedding_dim : int, default=64
        Size of the output embedding.
    hidden_sizes : tuple of int, default=(128,)
        Widths of the hidden layers, each followed by a ReLU.
    normalize : bool or None, default=None
        L2-normalise the embeddings, so that distances lie in ``[0, 2]`` and a
        margin means the same thing whatever the scale of the input. ``None``
        normalises unless ``residual`` is on.
    residual : bool, default=False
        Add a linear map of the input to the hidden layers' output, so that
        training starts from the input's own geometry: the map starts as the
        identity (the features, zero-padded) when ``embedding_dim >=
        n_features`` and as a random orthogonal projection otherwise, and the
        hidden layers' output starts at zero. Unnormalised, the untrained
        branch then compares samples by the Euclidean distance of their raw
        features (and the Koch head of ``loss='bce'`` by their L1 distance),
        divided by ``input_scale``. The estimators turn it on when fewer than
        50 classes train the branch: there a metric learned
        from scratch transferred worse to new classes than the raw input,
        while with more classes the residual start held the learned metric
        back (see :doc:`/benchmarks`).
    input_scale : float, default=1.0
        Inputs are divided by it before the first layer, so the layers see
        vectors of about unit length whatever the units of the features. The
        estimators set it to the median norm of the training samples. Stored
        with the weights (a buffer).
    """

    def __init__(
        self,
        n_features,
        embedding_dim=64,
        hidden_sizes=(128,),
        normalize=None,
        residual=False,
        input_scale=1.0,
    ):
        super().__init__()
        layers, width = [], n_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, embedding_dim))
        self.layers = nn.Sequential(*layers)
        self.normalize = not residual if normalize is None else normalize
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        self.skip = None
        if residual:
            self.skip = nn.Linear(n_features, embedding_dim, bias=False)
            if embedding_dim >= n_features:
                nn.init.eye_(self.skip.weight)  # the features themselves, zero-padded
            else:
                nn.init.orthogonal_(self.skip.weight)
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    def forward(self, X):
        X = X / self.input_scale.to(X.dtype)
        embeddings = self.layers(X)
        if self.skip is not None:
            embeddings = embeddings + self.skip(X)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


def _conv_block(in_channels, out_channels):
    # ceil_mode lets small images (8x8 digits) pass four poolings.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
    )


class ConvBranch(nn.Module):
    """Small ConvNet for images ``(n, H, W)`` or ``(n, C, H, W)``.

    Four blocks of 3x3 convolution, batch norm, ReLU and 2x2 max-pooling, then
    a linear layer to the embedding: the standard few-shot backbone.

    Parameters
    ----------
    input_shape : tuple of int
        ``(H, W)`` or ``(C, H, W)`` of one sample.
    embedding_dim : int, default=64
        Size of the output embedding.
    channels : int, default=64
        Channels of every convolution.
    n_blocks : int, default=4
        Number of convolutional blocks.
    normalize : bool, default=True
        L2-normalise the embeddings.
    """

    def __init__(self, input_shape, embedding_dim=64, channels=64, n_blocks=4, normalize=True):
        super().__init__()
        input_shape = tuple(input_shape)
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        widths = [input_shape[0]] + [channels] * n_blocks
        self.features = nn.Sequential(
            *(_conv_block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)), nn.Flatten()
        )
        self.features.eval()  # batch norm cannot see a batch of one in train mode
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.features.train()
        self.projection = nn.Linear(n_flat, embedding_dim)
        self.normalize = normalize

    def forward(self, X):
        if X.dim() == 3:
            X = X.unsqueeze(1)
        embeddings = self.projection(self.features(X))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings
