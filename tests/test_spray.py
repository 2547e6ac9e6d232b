"""SpRAy (Lapuschkin et al. 2019, Nat. Commun. 10:1096) against CoRelAy and on a planted shortcut."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

import xaiwidgets as xw
from xaiwidgets.analysis import eigengap, knn_affinity, spray


def blobs(n_per: int = 60, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (3, dim))
    x = np.concatenate([c + 0.35 * rng.normal(0, 1, (n_per, dim)) for c in centres])
    return x.reshape(-1, 8, 8), np.repeat(np.arange(3), n_per)


def test_spray_equals_corelay():
    """CoRelAy 1.0 SpectralEmbedding (SciPyPDist euclidean -> SparseKNN(10, symmetric) ->
    SymmetricNormalLaplacian -> EigenDecomposition) and its KMeans, on the same maps. CoRelAy returns
    ``1 - eig(D^-1/2 A D^-1/2)`` = eigenvalues of the normalised Laplacian; we ask it for the same end of the
    spectrum (``which="LA"``) and the same k eigenvectors. Eigenvalues are O(1) and come from ARPACK in
    float64, so 1e-6 is loose by orders of magnitude; k-means (seed 0, n_init 10) runs on row-normalised
    eigenvectors that agree up to sign, which leaves k-means++ distances unchanged."""
    pytest.importorskip("corelay")
    from corelay.pipeline.spectral import SpectralEmbedding
    from corelay.processor.clustering import KMeans
    from corelay.processor.embedding import EigenDecomposition

    maps, truth = blobs()
    ours = spray(maps, n_clusters=3, n_eigval=3, embedding=None, normalize=None, seed=0)
    x = maps.reshape(len(maps), -1)
    eigvals, eigvecs = SpectralEmbedding(embedding=EigenDecomposition(n_eigval=3, which="LA"))(x)
    order = np.argsort(eigvals)
    np.testing.assert_allclose(ours.eigenvalues[:3], eigvals[order], atol=1e-6)
    theirs = KMeans(n_clusters=3, kwargs={"n_init": 10, "random_state": 0})(eigvecs)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(ours.labels, theirs) >= 0.99
    assert adjusted_rand_score(ours.labels, truth) >= 0.99
    # the eigengap finds the three groups, and the affinity is the sparse symmetric kNN graph
    assert spray(maps, embedding=None).n_clusters == 3
    a = knn_affinity(x, 10)
    assert sp.issparse(a) and (a != a.T).nnz == 0 and a.nnz <= 2 * 10 * len(x)


def test_eigengap_and_result_shapes():
    assert eigengap(np.array([0.0, 0.01, 0.02, 0.5, 0.6]), 4) == 3
    maps, _ = blobs(20)
    r = spray(maps, n_clusters=2, embedding="tsne")
    assert r.embedding.shape == (60, 2) and r.medoids.shape == (2,) and r.labels.shape == (60,)
    for c, m in enumerate(r.medoids):
        assert r.labels[m] == c
    pytest.importorskip("umap")
    assert spray(maps, n_clusters=2, embedding="umap").embedding.shape == (60, 2)


SIZE = 32


def shapes(n: int, seed: int, frac: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Circles (0) and squares (1) from xw.demo.make_shapes; a fraction ``frac`` of the squares carries a
    magenta 5x5 watermark in the corner (as notebooks/debugging_a_biased_model.ipynb)."""
    d = xw.demo.make_shapes(n, size=SIZE, seed=seed)
    keep = d.labels < 2
    x, y = d.images[keep].clone(), d.labels[keep]
    u = torch.rand(len(y), generator=torch.Generator().manual_seed(seed + 1))
    marked = (y == 1) & (u < frac)
    x[marked, :, SIZE - 6:SIZE - 1, SIZE - 6:SIZE - 1] = torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1)
    return (x - 0.5) / 0.5, y, marked


def train(x: torch.Tensor, y: torch.Tensor, epochs: int = 6) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.mark.slow
@pytest.mark.parametrize("frac", [0.3, 0.0])
def test_spray_finds_a_planted_watermark(frac):
    """30 % of the squares carry a watermark: among the items predicted 'square', SpRAy on Grad-CAM maps puts
    the watermarked ones in a cluster of their own (purity and recall >= 0.9) and the eigengap picks >= 2
    clusters. Without the watermark (frac 0) no cluster is that pure in any planted subset (there is none)."""
    x, y, _ = shapes(800, 10, frac)
    net = train(x, y)
    xt, yt, mt = shapes(500, 11, frac)
    r = xw.explain_dataset(net, xt, methods=("gradcam",), labels=yt, map_size=16, batch_size=128, progress=False)
    result = r.spray("gradcam", 1, embedding=None)
    mk = mt.numpy()[result.indices]
    if frac == 0:
        assert not mk.any()
        # with nothing planted the analysis does not isolate a small tight group as in the marked run
        sizes = np.bincount(result.labels)
        assert result.n_clusters == 1 or sizes.min() > 0.2 * len(mk), sizes
        return
    assert result.n_clusters >= 2 and mk.sum() >= 10
    best = max(range(result.n_clusters), key=lambda c: (mk & (result.labels == c)).sum())
    inc = result.labels == best
    assert mk[inc].mean() >= 0.9 and (mk & inc).sum() / mk.sum() >= 0.9
