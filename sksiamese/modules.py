"""Default twin branches.

The twin network is a single branch applied to both inputs (shared weights);
these are the branches :class:`~sksiamese.SiameseEmbedder` picks from the shape
of ``X`` when ``module=None``. Any ``torch.nn.Module`` mapping a batch of
samples to a batch of vectors can replace them; :class:`BackboneBranch` adapts
a network trained elsewhere (a torchvision or timm model) to the library's
grey or colour images.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLPBranch", "ConvBranch", "BackboneBranch"]

# The statistics torchvision and timm models trained on ImageNet expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class BackboneBranch(nn.Module):
    """A network trained elsewhere as the twin branch: grey to colour, its input statistics.

    Wraps a backbone that maps images ``(n, C, H, W)`` to features (a
    torchvision model whose classifier is replaced by ``nn.Identity()``, a
    timm model built with ``num_classes=0``). The images the library loads
    lie in ``[0, 1]``; this branch gives the backbone what it was trained
    on:

    - grey images, ``(n, H, W)`` or ``(n, 1, H, W)``, are repeated to
      ``in_channels`` channels (a grey image is the colour image whose
      channels are equal);
    - each channel is standardised by the backbone's training ``mean`` and
      ``std`` (ImageNet's by default).

    Feature maps ``(n, C', h, w)`` are averaged over space. ``embedding_dim``
    adds a linear layer to that size (new, so trained from scratch); the
    embeddings are L2-normalised, as the default branches' are.

    Parameters
    ----------
    backbone : torch.nn.Module
        The pretrained network, without its classifier. It is trained with
        the branch: give it a smaller learning rate with
        ``optimizer__param_groups=[("backbone.*", {"lr": 1e-4})]``, or a
        rate of 0 to keep its weights (its batch-norm statistics still
        follow the new images, as training runs in training mode).
    input_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one sample, as the estimator will
        see it; used once, to size the projection, so required with
        ``embedding_dim``.
    in_channels : int, default=3
        Channels the backbone reads.
    mean, std : tuple of float, default=ImageNet's
        Per-channel statistics of the backbone's training images, in
        ``[0, 1]`` units, one value per input channel. ``None`` for both
        leaves the images as they are.
    embedding_dim : int or None, default=None
        Size of a linear projection of the backbone's features; ``None``
        keeps the features themselves. The projection's initial weights
        are drawn from torch's global generator when the branch is built
        (call ``torch.manual_seed`` first to fix them): the estimator's
        ``random_state`` seeds only the modules it builds itself.
    normalize : bool, default=True
        L2-normalise the embeddings.

    Notes
    -----
    A network trained on photographs never saw white ink on a black page,
    which is how ``load_images(invert=True)`` gives scans: load them for
    such a network with ``invert=False`` (dark ink on light paper), so that
    its input looks more like its training images.

    The pattern of ``optimizer__param_groups`` names the parameters as the
    estimator's module holds them: ``"backbone.*"`` in
    :class:`~sksiamese.SiameseEmbedder` and
    :class:`~sksiamese.OneShotClassifier`, ``"branch.backbone.*"`` in
    :class:`~sksiamese.SiameseVerifier`, which wraps the branch with its
    similarity head.

    Examples
    --------
    >>> import torch
    >>> from sksiamese.modules import BackboneBranch
    >>> backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> branch = BackboneBranch(backbone, input_shape=(28, 28), embedding_dim=16)
    >>> branch(torch.rand(5, 28, 28)).shape
    torch.Size([5, 16])
    """

    def __init__(
        self,
        backbone,
        input_shape=None,
        in_channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        embedding_dim=None,
        normalize=True,
    ):
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError("Give both mean and std, or neither (None for both).")
        if mean is None:
            mean, std = (0.0,) * in_channels, (1.0,) * in_channels
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(
                f"mean and std need one value per channel the backbone reads "
                f"(in_channels={in_channels}; the defaults are ImageNet's three); "
                f"got mean={mean}, std={std}."
            )
        if min(std) <= 0:
            raise ValueError(f"std must be positive; got {std}.")
        if embedding_dim is not None and input_shape is None:
            raise ValueError("embedding_dim needs input_shape, to size the projection.")
        self.backbone = backbone
        self.in_channels = in_channels
        self.normalize = normalize
        # Buffers: saved with the weights and moved with the module; made
        # where the backbone lies, so that the probe below runs there.
        device = next(backbone.parameters(), torch.empty(0)).device
        for name, values in (("mean", mean), ("std", std)):
            buffer = torch.tensor(values, dtype=torch.float32, device=device)
            self.register_buffer(name, buffer.reshape(1, -1, 1, 1))
        self.projection = None
        if embedding_dim is not None:
            self.projection = nn.Linear(self._n_features(input_shape), embedding_dim)

    def _n_features(self, input_shape):
        """Size of the backbone's features for one sample, its modes and device left as found."""
        modes = [(module, module.training) for module in self.modules()]
        self.eval()  # batch norm cannot see a batch of one in train mode
        with torch.no_grad():
            probe = torch.zeros(1, *input_shape, device=self.mean.device)
            n_features = self._features(probe).shape[1]
        for module, training in modes:
            module.train(training)
        return n_features

    def _colour(self, X):
        """``X`` as ``(n, in_channels, H, W)``, standardised for the backbone."""
        if X.dim() == 3:
            X = X.unsqueeze(1)
        if X.dim() != 4:
            raise ValueError(
                "BackboneBranch takes images (n, H, W) or (n, C, H, W); got shape "
                f"{tuple(X.shape)}."
            )
        if X.shape[1] == 1 and self.in_channels != 1:
            X = X.expand(-1, self.in_channels, -1, -1)
        elif X.shape[1] != self.in_channels:
            raise ValueError(
                f"The backbone reads {self.in_channels} channel(s); the images have "
                f"{X.shape[1]}. Grey images (one channel) are repeated; give images "
                f"with 1 or {self.in_channels} channels."
            )
        return (X - self.mean) / self.std

    def _features(self, X):
        features = self.backbone(self._colour(X))
        if features.dim() == 4:  # a feature map: average over space
            features = features.mean((2, 3))
        return features.flatten(1)

    def forward(self, X):
        embeddings = self._features(X)
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings
