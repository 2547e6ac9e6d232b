"""SpRAy: spectral relevance analysis (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors and
assessing what machines really learn", Nat. Commun. 10:1096).

Explanation maps of many items are clustered spectrally: a symmetric k-nearest-neighbour graph over the
(downsampled, normalised) maps, the normalised graph Laplacian ``L = I - D^-1/2 A D^-1/2``, its smallest
eigenvalues (the eigengap after the k-th suggests k clusters), k-means on the row-normalised eigenvectors
(Ng, Jordan & Weiss 2001), and a 2-D embedding for browsing. A cluster of unusual maps inside one class
points at a strategy of its own, e.g. a watermark the model learned as a shortcut.

Memory stays O(N k): the kNN graph is sparse (scikit-learn's tree/brute search in blocks) and the
eigenpairs come from ``scipy.sparse.linalg.eigsh``; no dense N x N matrix is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InputError, ParameterError

if TYPE_CHECKING:
    import scipy.sparse as sp


@dataclass
class SprayResult:
    """Cluster labels ``(N,)``, eigenvalues of the normalised Laplacian (ascending), the spectral embedding
    ``(N, n_eigval)``, a 2-D embedding ``(N, 2)`` (or None), one medoid row per cluster, and ``indices``:
    dataset indices of the rows when computed from a :class:`~xaiwidgets.DatasetExplanations`."""

    labels: np.ndarray
    n_clusters: int
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    embedding: np.ndarray | None
    medoids: np.ndarray
    indices: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def cluster(self, c: int) -> np.ndarray:
        """Rows (or dataset indices, when known) of cluster ``c``."""
        rows = np.flatnonzero(self.labels == c)
        return self.indices[rows] if self.indices is not None else rows


def knn_affinity(x: np.ndarray, n_neighbors: int = 10) -> sp.csr_matrix:
    """Sparse kNN connectivity (1 for each of the ``n_neighbors`` nearest other points, Euclidean), made
    symmetric as ``(A + A^T) / 2`` (CoRelAy's ``SparseKNN``)."""
    from sklearn.neighbors import kneighbors_graph

    k = min(n_neighbors, x.shape[0] - 1)
    a = kneighbors_graph(x, k, mode="connectivity", include_self=False)
    return ((a + a.T) / 2.0).tocsr()


def laplacian_spectrum(affinity: sp.csr_matrix, n_eigval: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_eigval`` smallest eigenvalues (ascending) and eigenvectors of ``I - D^-1/2 A D^-1/2``,
    computed as the largest algebraic eigenpairs of ``D^-1/2 A D^-1/2`` with ``eigsh``."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    degree = np.asarray(affinity.sum(1)).ravel()
    d = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1e-300)))
    s = (d @ affinity @ d).tocsr()
    n = s.shape[0]
    k = min(n_eigval, n - 1)
    v0 = np.ones(n) / np.sqrt(n)  # a fixed start vector: the same eigenvectors on every run
    vals, vecs = eigsh(s, k=k, which="LA", v0=v0)
    order = np.argsort(-vals)
    return 1.0 - vals[order], vecs[:, order]


def eigengap(eigenvalues: np.ndarray, max_clusters: int) -> int:
    """The number of clusters ``k`` maximising the gap ``mu_{k+1} - mu_k`` among the ascending Laplacian
    eigenvalues (von Luxburg 2007, sec. 8.3), ``1 <= k <= max_clusters``."""
    m = min(max_clusters + 1, len(eigenvalues))
    if m < 2:
        return 1
    return int(np.argmax(np.diff(eigenvalues[:m]))) + 1


def _medoids(x: np.ndarray, labels: np.ndarray, n_clusters: int, exact_up_to: int = 1500) -> np.ndarray:
    """Per cluster, the member with the least summed distance to the others (exact up to ``exact_up_to``
    members; above, the member nearest the cluster mean)."""
    from sklearn.metrics import pairwise_distances

    out = np.full(n_clusters, -1, np.int64)
    for c in range(n_clusters):
        rows = np.flatnonzero(labels == c)
        if not len(rows):
            continue
        pts = x[rows]
        if len(rows) <= exact_up_to:
            score = pairwise_distances(pts).sum(1)
        else:
            score = ((pts - pts.mean(0)) ** 2).sum(1)
        out[c] = rows[int(np.argmin(score))]
    return out


def prepare_maps(maps: Any, normalize: str | None = "max") -> np.ndarray:
    """``(N, ...)`` maps flattened to float64 rows; ``normalize="max"`` divides each by its max |value|."""
    x = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x).all(1))[0])
        raise InputError(f"map {bad} has NaN or inf values; select finite maps first")
    if normalize == "max":
        scale = np.abs(x).max(1, keepdims=True)
        x = x / np.where(scale > 0, scale, 1.0)
    elif normalize is not None:
        raise ParameterError(f"normalize must be 'max' or None; got {normalize!r}")
    return x


def spray(
    maps: Any,
    *,
    n_clusters: int | str = "eigengap",
    n_neighbors: int = 10,
    embedding: str | None = "tsne",
    seed: int = 0,
    n_eigval: int = 16,
    max_clusters: int = 10,
    normalize: str | None = "max",
) -> SprayResult:
    """Spectral relevance analysis of ``maps`` ``(N, H, W)`` (or ``(N, d)``).

    ``n_clusters``: an int or ``"eigengap"`` (up to ``max_clusters``). ``embedding``: ``"tsne"`` (scikit-learn),
    ``"umap"`` (umap-learn), ``"spectral"`` (the first two non-trivial eigenvectors) or None. k-means uses
    ``n_init=10`` and ``random_state=seed`` on the first ``n_clusters`` row-normalised eigenvectors.
    """
    from sklearn.cluster import KMeans

    x = prepare_maps(maps, normalize)
    n = x.shape[0]
    if n < 3:
        raise InputError(f"SpRAy needs at least 3 maps; got {n}")
    if n_neighbors < 1:
        raise ParameterError(f"n_neighbors must be >= 1; got {n_neighbors}")
    affinity = knn_affinity(x, n_neighbors)
    vals, vecs = laplacian_spectrum(affinity, max(n_eigval, (n_clusters if isinstance(n_clusters, int) else 0) + 1,
                                                  max_clusters + 1))
    if n_clusters == "eigengap":
        k = eigengap(vals, max_clusters)
    elif isinstance(n_clusters, int) and 1 <= n_clusters < n:
        k = n_clusters
    else:
        raise ParameterError(f"n_clusters must be 'eigengap' or an int in [1, {n - 1}]; got {n_clusters!r}")
    feats = vecs[:, :k] / np.maximum(np.linalg.norm(vecs[:, :k], axis=1, keepdims=True), 1e-300)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(feats) if k > 1 else np.zeros(n, int)
    emb = _embed(vecs, x, embedding, seed, n_neighbors)
    return SprayResult(labels=labels.astype(np.int64), n_clusters=k, eigenvalues=vals, eigenvectors=vecs,
                       embedding=emb, medoids=_medoids(x, labels, k),
                       params={"n_neighbors": n_neighbors, "n_eigval": n_eigval, "seed": seed,
                               "normalize": normalize, "embedding": embedding})


def _embed(vecs: np.ndarray, x: np.ndarray, embedding: str | None, seed: int, n_neighbors: int) -> np.ndarray | None:
    """A 2-D view of the spectral embedding (t-SNE/UMAP run on the eigenvectors, as ViRelAy does)."""
    if embedding is None:
        return None
    if embedding == "spectral":
        return vecs[:, 1:3].copy()
    feats = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-300)
    if embedding == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(feats)
    if embedding == "umap":
        import umap

        return umap.UMAP(n_neighbors=min(max(n_neighbors, 2), len(x) - 1), random_state=seed).fit_transform(feats)
    raise ParameterError(f"embedding must be 'tsne', 'umap', 'spectral' or None; got {embedding!r}")
