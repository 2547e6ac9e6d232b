"""Anchors (Ribeiro, Singh & Guestrin 2018, "Anchors: High-Precision Model-Agnostic Explanations", AAAI).

An anchor is a set of features (words of a text, or bin predicates of a tabular row) that, held fixed,
keeps the model's prediction with probability >= ``threshold`` under a perturbation distribution.
Candidates grow by one feature per round (beam search of width ``beam_size``); each round picks the
best ``beam_size`` candidates by KL-LUCB best-arm identification (Kaufmann & Kalyanakrishnan 2013) to
tolerance ``epsilon`` (tau) and confidence ``delta``, then checks the winners until their KL confidence
interval clears ``threshold`` within ``epsilon_stop``. Samples drawn for an anchor are shared with its
extensions (those where the added feature happens to be kept), as in the ``anchor`` package.

Perturbations:
- text: each word (or token, ``level="token"``) outside the anchor is replaced with probability 1/2 by
  ``[UNK]`` (``replace="unk"``, the anchor package's ``use_unk_distribution``), ``[MASK]``, padding, or
  removed; ``perturb=fn(words, keep, generator) -> texts`` plugs in any other distribution, e.g.
  :func:`masked_lm_perturber` (a masked language model fills the replaced words).
- tabular: features are discretised into quantile bins of the background (quartiles), the predicates
  are ``bin <= v`` / ``bin > v`` around the row's bin (the anchor package's ordinal predicates), and
  samples are background rows that satisfy the anchor. Deliberate difference: the anchor package
  redraws only the violating features of random rows, so the samples it inherits from a parent anchor
  (real rows that happen to satisfy the new predicate) follow another distribution than those it draws
  fresh, and its reported precision can be far above the precision of fresh samples; drawing from the
  exact conditional keeps both the same. (If no background row satisfies the anchor, we fall back to
  the package's per-feature redraw.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.errors import InputError, ModelError, ParameterError
from ...core.progress import Progress
from ...core.tabular import TabularModel
from ...core.targets import TargetLike, resolve_target
from ...core.text import REPLACEMENTS, Encoding, TextClassifier
from ..base import Method, require
from ..registry import register

# ----------------------------------------------------------------------------------------------------------
# KL confidence bounds for a Bernoulli mean (bookkeeping on scalars)


def kl_bernoulli(p: float, q: float) -> float:
    p = min(1 - 1e-16, max(1e-7, p))
    q = min(1 - 1e-16, max(1e-7, q))
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _kl_bound(p: float, level: float, n_iter: int, upper: bool) -> float:
    """The ``q`` on one side of ``p`` where ``KL(p, q)`` reaches ``level`` (bisection)."""
    half = math.sqrt(level / 2)
    lo, hi = (p, min(1.0, p + half)) if upper else (max(0.0, min(1.0, p - half)), p)
    for _ in range(1, n_iter):
        mid = (lo + hi) / 2
        if (kl_bernoulli(p, mid) > level) == upper:
            hi = mid
        else:
            lo = mid
    return hi if upper else lo


def kl_upper(p: float, level: float, n_iter: int = 17) -> float:
    """Largest ``q >= p`` with ``KL(p, q) <= level`` (bisection)."""
    return _kl_bound(p, level, n_iter, True)


def kl_lower(p: float, level: float, n_iter: int = 17) -> float:
    """Smallest ``q <= p`` with ``KL(p, q) <= level`` (bisection)."""
    return _kl_bound(p, level, n_iter, False)


def lucb_beta(n_arms: int, t: int, delta: float) -> float:
    """Exploration rate of KL-LUCB (Kaufmann & Kalyanakrishnan 2013, with alpha=1.1, k=405.5)."""
    temp = math.log(405.5 * n_arms * t**1.1 / delta)
    return temp + math.log(temp)


# ----------------------------------------------------------------------------------------------------------
# samplers: D(z | anchor) for one input


class TextSampler:
    """Perturbations of one text: features are its words (or tokens); kept with probability 1/2."""

    def __init__(
        self,
        classifier: TextClassifier,
        text: str,
        target: int,
        *,
        level: str,
        replace: str,
        perturb: Callable[..., Sequence[str]] | None,
        generator: torch.Generator,
        batch_size: int,
    ) -> None:
        self.classifier = classifier
        self.encoding: Encoding = classifier.encode(text)
        self.level = level
        self.replace = replace
        self.perturb = perturb
        self.features = classifier.features(self.encoding, level)
        self.n_features = len(self.features)
        self.target = int(target)
        self.gen = generator
        self.batch_size = batch_size
        self.device = classifier.device
        self.raw: list[Any] = []

    def coverage_data(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.n_features, generator=self.gen) < 0.5

    def sample(self, anchor: Sequence[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(kept (n, M) bool, prediction == target (n,) bool)``; anchored features are always kept."""
        keep = torch.rand(n, self.n_features, generator=self.gen) < 0.5
        if anchor:
            keep[:, list(anchor)] = True
        if self.perturb is None:
            scores = self.classifier.score_coalitions(
                self.encoding, keep, level=self.level, replace=self.replace, batch_size=self.batch_size
            )
            self.raw.append(keep)
        else:
            texts = list(self.perturb(list(self.features), keep, self.gen))
            if len(texts) != n:
                raise ModelError(f"perturb returned {len(texts)} texts for {n} samples; return one per row of keep")
            scores = self.classifier.scores(texts, batch_size=self.batch_size)
            self.raw.extend(texts)
        return keep, (scores.argmax(1) == self.target).cpu()

    def describe(self, rows: torch.Tensor) -> list[str]:
        """The perturbed texts of the given sample rows."""
        if self.perturb is not None:
            return [self.raw[int(i)] for i in rows]
        keep = torch.cat(self.raw)[rows] if self.raw else torch.zeros(0, self.n_features, dtype=torch.bool)
        token = {"unk": "[UNK]", "mask": "[MASK]", "pad": "[PAD]", "remove": ""}[self.replace]
        if self.perturb is None and self.replace in ("unk", "mask", "pad"):
            name = {"unk": "unk_token", "mask": "mask_token", "pad": "pad_token"}[self.replace]
            token = getattr(self.classifier.tokenizer, name, None) or token
        out = []
        for row in keep.tolist():
            words = [w if k else token for w, k in zip(self.features, row)]
            out.append(" ".join(w for w in words if w))
        return out

    def names(self, anchor: Sequence[int]) -> list[str]:
        return [self.features[i] for i in anchor]


class TabularSampler:
    """Perturbations of one row: background rows conditioned on the anchor's predicates."""

    def __init__(
        self,
        model: TabularModel,
        x: torch.Tensor,
        target: int,
        *,
        background: torch.Tensor,
        n_bins: int,
        generator: torch.Generator,
        batch_size: int,
    ) -> None:
        self.model = model
        self.x = x
        self.target = int(target)
        self.gen = generator
        self.batch_size = batch_size
        self.background = background
        self.edges = model.quantile_bins(n_bins, background)  # (d, K-1)
        self.bg_bins = TabularModel.discretize(background, self.edges)  # (B, d)
        self.x_bins = TabularModel.discretize(x, self.edges)[0]  # (d,)
        feats, values, kinds = [], [], []
        k = n_bins
        for f in range(x.shape[1]):
            b = int(self.x_bins[f])
            for v in range(k):
                if b <= v and v != k - 1:
                    feats.append(f), values.append(v), kinds.append(0)  # bin <= v
                elif b > v:
                    feats.append(f), values.append(v), kinds.append(1)  # bin > v
        self.pf = torch.tensor(feats, dtype=torch.long)
        self.pv = torch.tensor(values, dtype=torch.long)
        self.pk = torch.tensor(kinds, dtype=torch.long)
        self.n_features = len(feats)
        self.bg_sat = self.satisfied(self.bg_bins)  # (B, P)
        self.rows: list[torch.Tensor] = []

    def satisfied(self, bins: torch.Tensor) -> torch.Tensor:
        """``(n, P)`` bool: which predicates each row's bins ``(n, d)`` satisfy."""
        b = bins[:, self.pf.to(bins.device)]
        v = self.pv.to(bins.device)
        return torch.where(self.pk.to(bins.device) == 0, b <= v, b > v)

    def coverage_data(self, n: int) -> torch.Tensor:
        idx = torch.randint(self.background.shape[0], (n,), generator=self.gen)
        return self.satisfied(self.bg_bins[idx.to(self.bg_bins.device)]).cpu()

    def sample(self, anchor: Sequence[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Background rows that satisfy every predicate of ``anchor`` (the exact conditional of the
        background); when none does, rows whose violating features are redrawn feature by feature."""
        device = self.background.device
        nb = self.background.shape[0]
        eligible = torch.nonzero(self.bg_sat[:, list(anchor)].all(1)).flatten() if anchor else None
        if eligible is None or eligible.numel() > 0:
            pool = torch.arange(nb, device=device) if eligible is None else eligible
            idx = pool[torch.randint(pool.numel(), (n,), generator=self.gen).to(device)]
            rows = self.background[idx].clone()
        else:
            idx = torch.randint(nb, (n,), generator=self.gen).to(device)
            rows = self.background[idx].clone()
            self._redraw(rows, idx, anchor, n)
        with torch.no_grad():
            pred = torch.cat(
                [self.model(rows[a : a + self.batch_size]).argmax(1) for a in range(0, n, self.batch_size)]
            )
        self.rows.append(rows)
        bins = TabularModel.discretize(rows, self.edges)
        return self.satisfied(bins).cpu(), (pred == self.target).cpu()

    def _redraw(self, rows: torch.Tensor, idx: torch.Tensor, anchor: Sequence[int], n: int) -> None:
        for f in sorted({int(self.pf[p]) for p in anchor}):
            lo, hi = 0, len(self.edges[f])
            for p in anchor:
                if int(self.pf[p]) == f:
                    v = int(self.pv[p])
                    hi, lo = (min(hi, v), lo) if int(self.pk[p]) == 0 else (hi, max(lo, v + 1))
            bins = self.bg_bins[idx, f]
            bad = torch.nonzero((bins < lo) | (bins > hi)).flatten()
            ok = torch.nonzero((self.bg_bins[:, f] >= lo) & (self.bg_bins[:, f] <= hi)).flatten()
            if bad.numel() == 0:
                continue
            if ok.numel() == 0:
                rows[bad, f] = self.x[0, f]
                continue
            pick = ok[torch.randint(ok.numel(), (bad.numel(),), generator=self.gen).to(rows.device)]
            rows[bad, f] = self.background[pick, f]

    def describe(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.rows)[rows.to(self.background.device)] if self.rows else self.x[:0]

    def names(self, anchor: Sequence[int]) -> list[str]:
        """One rule per anchored feature, bounds merged (``a < name <= b``)."""
        out = []
        for f in sorted({int(self.pf[p]) for p in anchor}):
            lo, hi = None, None
            for p in anchor:
                if int(self.pf[p]) == f:
                    edge = float(self.edges[f, int(self.pv[p])])
                    if int(self.pk[p]) == 0:
                        hi = edge if hi is None else min(hi, edge)
                    else:
                        lo = edge if lo is None else max(lo, edge)
            name = self.model.feature_name(f)
            if lo is not None and hi is not None:
                out.append(f"{lo:.4g} < {name} <= {hi:.4g}")
            elif hi is not None:
                out.append(f"{name} <= {hi:.4g}")
            else:
                out.append(f"{name} > {lo:.4g}")
        return out

    def feature_indices(self, anchor: Sequence[int]) -> list[int]:
        return sorted({int(self.pf[p]) for p in anchor})


# ----------------------------------------------------------------------------------------------------------
# KL-LUCB beam search


class _Search:
    """State of one anchor search: the samples drawn and, per candidate, which of them it can use."""

    def __init__(self, sampler: Any, batch_size: int, progress: Progress, max_samples: int | None) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.progress = progress
        self.max_samples = max_samples
        self._data = torch.zeros(1024, sampler.n_features, dtype=torch.bool)  # grown by doubling
        self._labels = torch.zeros(1024, dtype=torch.bool)
        self.n_drawn = 0
        self.idx: dict[tuple, torch.Tensor] = {}
        self.coverage: dict[tuple, float] = {}
        self.coverage_rows: dict[tuple, torch.Tensor] = {}

    @property
    def data(self) -> torch.Tensor:
        return self._data[: self.n_drawn]

    @property
    def labels(self) -> torch.Tensor:
        return self._labels[: self.n_drawn]

    def exhausted(self) -> bool:
        return self.max_samples is not None and self.n_drawn >= self.max_samples

    def draw(self, t: tuple, n: int) -> None:
        self.progress.check()
        data, labels = self.sampler.sample(t, n)
        start = self.n_drawn
        if start + n > self._labels.shape[0]:
            size = max(2 * self._labels.shape[0], start + n)
            self._data = torch.cat([self._data, self._data.new_zeros(size - self._data.shape[0], self._data.shape[1])])
            self._labels = torch.cat([self._labels, self._labels.new_zeros(size - self._labels.shape[0])])
        self._data[start : start + n] = data
        self._labels[start : start + n] = labels
        self.n_drawn = start + n
        self.idx[t] = torch.cat([self.idx[t], torch.arange(start, start + n)])

    def stats(self, t: tuple) -> tuple[int, int]:
        rows = self.idx[t]
        return int(rows.numel()), int(self.labels[rows].sum())

    def extend(self, previous: list[tuple], coverage_data: torch.Tensor) -> list[tuple]:
        """All one-feature extensions of ``previous``, inheriting the samples where the new feature is kept."""
        m = self.sampler.n_features
        if not previous:
            out = []
            for f in range(m):
                t = (f,)
                self.idx[t] = torch.nonzero(self.data[:, f]).flatten()
                self.coverage_rows[t] = coverage_data[:, f]
                self.coverage[t] = float(coverage_data[:, f].float().mean())
                out.append(t)
            return out
        out, seen = [], set()
        for f in range(m):
            for t in previous:
                new = tuple(sorted(set(t) | {f}))
                if len(new) != len(t) + 1 or new in seen:
                    continue
                seen.add(new)
                rows = self.idx[t]
                self.idx[new] = rows[self.data[rows, f]]
                cov = self.coverage_rows[t] & coverage_data[:, f]
                self.coverage_rows[new] = cov
                self.coverage[new] = float(cov.float().mean())
                out.append(new)
        return out

    def lucb(self, tuples: list[tuple], epsilon: float, delta: float, top_n: int) -> list[int]:
        """Indices of the ``top_n`` candidates with the highest precision (KL-LUCB to tolerance ``epsilon``)."""
        n = len(tuples)
        for t in tuples:
            if self.idx[t].numel() == 0:
                self.draw(t, 1)
        if n <= top_n:
            return list(range(n))
        counts = [list(self.stats(t)) for t in tuples]
        means = [p / s for s, p in counts]
        ub = [0.0] * n
        lb = [0.0] * n
        step = 1

        def bounds() -> tuple[int, int]:
            order = sorted(range(n), key=lambda i: means[i])
            best, rest = order[-top_n:], order[:-top_n]
            beta = lucb_beta(n, step, delta)
            for i in rest:
                ub[i] = kl_upper(means[i], beta / counts[i][0])
            for i in best:
                lb[i] = kl_lower(means[i], beta / counts[i][0])
            return max(rest, key=lambda i: ub[i]), min(best, key=lambda i: lb[i])

        ut, lt = bounds()
        while ub[ut] - lb[lt] > epsilon and not self.exhausted():
            for i in (ut, lt):
                self.draw(tuples[i], self.batch_size)
                counts[i] = list(self.stats(tuples[i]))
                means[i] = counts[i][1] / counts[i][0]
            step += 1
            ut, lt = bounds()
        order = sorted(range(n), key=lambda i: means[i])
        return order[-top_n:]


def anchor_search(
    sampler: Any,
    *,
    threshold: float,
    delta: float,
    epsilon: float,
    epsilon_stop: float,
    batch_size: int,
    beam_size: int,
    max_anchor_size: int | None,
    stop_on_first: bool,
    coverage_samples: int,
    max_samples: int | None,
    progress: Progress,
) -> dict[str, Any]:
    """Beam search for the highest-coverage anchor whose precision clears ``threshold`` (Algorithm 2 of the
    paper, KL-LUCB per round); returns the anchor, its precision, coverage and sample indices."""
    search = _Search(sampler, batch_size, progress, max_samples)
    coverage_data = sampler.coverage_data(coverage_samples)
    search.idx[()] = torch.zeros(0, dtype=torch.long)
    search.draw((), 1)
    n, pos = search.stats(())
    mean = pos / n
    if mean > threshold and kl_lower(mean, math.log(1 / delta) / n) > threshold - epsilon:
        return {"anchor": (), "search": search, "converged": True}
    m = sampler.n_features
    max_size = m if max_anchor_size is None else min(m, max_anchor_size)
    best_of_size: dict[int, list[tuple]] = {0: []}
    best, best_coverage = (), -1.0
    size = 1
    while size <= max_size:
        progress.update(size - 1, max_size, "anchors")
        tuples = search.extend(best_of_size[size - 1], coverage_data)
        tuples = [t for t in tuples if search.coverage[t] > best_coverage]
        if not tuples:
            break
        chosen = search.lucb(tuples, epsilon, delta, min(beam_size, len(tuples)))
        best_of_size[size] = [tuples[i] for i in chosen]
        beta = math.log(1 / (delta / (1 + (beam_size - 1) * m)))
        stop = False
        for t in best_of_size[size]:
            while True:
                n, pos = search.stats(t)
                mean = pos / n
                lb, ub = kl_lower(mean, beta / n), kl_upper(mean, beta / n)
                undecided = (mean >= threshold and lb < threshold - epsilon_stop) or (
                    mean < threshold and ub >= threshold + epsilon_stop
                )
                if not undecided or search.exhausted():
                    break
                search.draw(t, batch_size)
            if mean >= threshold and lb > threshold - epsilon_stop and search.coverage[t] > best_coverage:
                best, best_coverage = t, search.coverage[t]
                stop = stop or best_coverage == 1 or stop_on_first
        if stop or search.exhausted():
            break
        size += 1
    converged = bool(best) or False
    if not best:  # no anchor reached the threshold: the most precise candidate seen
        tuples = [t for s in range(1, size + 1) for t in best_of_size.get(s, [])]
        if tuples:
            best = tuples[search.lucb(tuples, epsilon, delta, 1)[0]]
    return {"anchor": best, "search": search, "converged": converged}


# ----------------------------------------------------------------------------------------------------------
# perturbation by a masked language model


def masked_lm_perturber(mlm: Any, tokenizer: Any, *, batch_size: int = 32, temperature: float = 1.0) -> Callable:
    """A ``perturb`` function for text anchors: the words not kept are masked (one ``[MASK]`` per word) and
    filled in one pass with tokens sampled from ``mlm`` (a Hugging Face masked LM, e.g. BertForMaskedLM)."""
    mask_token = getattr(tokenizer, "mask_token", None)
    if mask_token is None:
        raise ParameterError("the tokenizer has no mask token; masked-LM perturbation needs one")
    special = torch.tensor(sorted(set(getattr(tokenizer, "all_special_ids", []))), dtype=torch.long)

    @torch.no_grad()
    def perturb(words: list[str], keep: torch.Tensor, generator: torch.Generator) -> list[str]:
        texts = [" ".join(w if k else mask_token for w, k in zip(words, row)) for row in keep.tolist()]
        out: list[str] = []
        device = next(mlm.parameters()).device
        for a in range(0, len(texts), batch_size):
            enc = tokenizer(texts[a : a + batch_size], padding=True, return_tensors="pt").to(device)
            logits = mlm(**enc).logits / temperature
            logits[..., special.to(device)] = -math.inf
            where = enc["input_ids"] == tokenizer.mask_token_id
            probs = logits[where].float().softmax(-1).cpu()
            fill = torch.multinomial(probs, 1, generator=generator).flatten() if probs.numel() else probs
            new = tokenizer.convert_ids_to_tokens(fill.tolist())
            it = iter(new)
            for row in keep[a : a + batch_size].tolist():
                out.append(" ".join(w if k else next(it).removeprefix("##") for w, k in zip(words, row)))
        return out

    return perturb


# ----------------------------------------------------------------------------------------------------------
# the method


@register
class Anchors(Method):
    """Anchors for a :class:`~xaiwidgets.core.text.TextClassifier` (inputs: a text or a list of texts) or a
    :class:`~xaiwidgets.core.tabular.TabularModel` (inputs: rows ``(N, d)``).

    ``values`` is ``(N, M)``: 1 for the features in the anchor (words/tokens of each text, zero-padded to the
    longest; columns of the table), 0 elsewhere. ``extras`` holds per-input lists: ``anchor`` (words or
    rules), ``anchor_indices``, ``precision``, ``coverage``, ``features``, ``examples_hold`` and
    ``examples_fail`` (perturbed samples where the anchor holds and the prediction is kept / changes),
    ``n_samples`` (model evaluations), ``converged`` (an anchor reached the threshold) and ``rule``.
    """

    name = "anchors"
    family = "perturbation"
    reference = "Ribeiro, Singh & Guestrin 2018, Anchors: High-Precision Model-Agnostic Explanations (AAAI)"
    defaults: ClassVar[dict[str, Any]] = {
        "threshold": 0.95,
        "delta": 0.1,
        "epsilon": 0.15,
        "epsilon_stop": 0.05,
        "batch_size": 100,
        "beam_size": 4,
        "max_anchor_size": None,
        "stop_on_first": True,
        "coverage_samples": 10000,
        "max_samples": None,
        "level": "word",
        "replace": "unk",
        "perturb": None,
        "background": None,
        "n_bins": 4,
        "n_examples": 5,
        "seed": 0,
    }
    default_reduce = "none"
    signed = False

    def validate(self, inputs: Any, p: dict[str, Any]) -> None:
        require(0 < p["threshold"] < 1, f"threshold must be in (0, 1), got {p['threshold']!r}")
        require(0 < p["delta"] < 1, f"delta must be in (0, 1), got {p['delta']!r}")
        require(0 < p["epsilon"] < 1, f"epsilon (tau) must be in (0, 1), got {p['epsilon']!r}")
        require(0 <= p["epsilon_stop"] < 1, f"epsilon_stop must be in [0, 1), got {p['epsilon_stop']!r}")
        for key in ("batch_size", "beam_size", "coverage_samples", "n_bins"):
            v = p[key]
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
            require(ok, f"{key} must be an integer >= 1, got {v!r}")
        require(p["n_bins"] >= 2, f"n_bins must be at least 2, got {p['n_bins']}")
        require(p["level"] in ("word", "token"), f"level must be 'word' or 'token', got {p['level']!r}")
        require(p["replace"] in REPLACEMENTS, f"replace must be one of {', '.join(REPLACEMENTS)}, got {p['replace']!r}")
        require(
            p["perturb"] is None or callable(p["perturb"]),
            "perturb must be a function (words, keep, generator) -> texts",
        )
        require(p["seed"] is None or isinstance(p["seed"], int), f"seed must be an integer or None, got {p['seed']!r}")

    def explain_text(
        self, classifier: TextClassifier, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Anchors of a text or a list of texts (see the class docstring)."""
        return self._text(classifier, inputs, target, self._checked(params), progress)

    def explain_tabular(
        self, model: TabularModel, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Anchors of rows ``(N, d)`` (see the class docstring)."""
        return self._tabular(model, inputs, target, self._checked(params), progress)

    def _checked(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self.resolve_params(params)
        self.validate(None, p)
        return p

    def _search(self, sampler: Any, p: dict[str, Any], progress: Progress) -> dict[str, Any]:
        return anchor_search(
            sampler, threshold=p["threshold"], delta=p["delta"], epsilon=p["epsilon"],
            epsilon_stop=p["epsilon_stop"], batch_size=p["batch_size"], beam_size=p["beam_size"],
            max_anchor_size=p["max_anchor_size"], stop_on_first=p["stop_on_first"],
            coverage_samples=p["coverage_samples"], max_samples=p["max_samples"], progress=progress,
        )

    @staticmethod
    def _summary(found: dict[str, Any], sampler: Any, n_examples: int) -> dict[str, Any]:
        search = found["search"]
        anchor = found["anchor"]
        rows = search.idx[anchor]
        hold = search.labels[rows]
        precision = float(hold.float().mean()) if rows.numel() else float("nan")
        coverage = float(search.coverage.get(anchor, 1.0)) if anchor else 1.0
        return {
            "anchor_tuple": anchor,
            "precision": precision,
            "coverage": coverage,
            "examples_hold": sampler.describe(rows[hold][:n_examples]),
            "examples_fail": sampler.describe(rows[~hold][:n_examples]),
            "n_samples": search.n_drawn,
            "converged": found["converged"],
        }

    def _text(
        self, clf: TextClassifier, inputs: Any, target: TargetLike, p: dict[str, Any], progress: Progress
    ) -> Attribution:
        texts = [inputs] if isinstance(inputs, str) else list(inputs) if isinstance(inputs, (list, tuple)) else None
        if not texts or not all(isinstance(t, str) for t in texts):
            raise InputError("anchors on a TextClassifier takes a text or a non-empty list of texts")
        scores = clf.scores(texts)
        resolved = resolve_target(target, scores)
        gen = torch.Generator().manual_seed(0 if p["seed"] is None else int(p["seed"]))
        results = []
        for i, text in enumerate(texts):
            sampler = TextSampler(
                clf, text, int(resolved[i]), level=p["level"], replace=p["replace"], perturb=p["perturb"],
                generator=gen, batch_size=p["batch_size"],
            )
            if sampler.n_features == 0:
                raise InputError(f"text {i} has no words to explain")
            found = self._search(sampler, p, progress)
            info = self._summary(found, sampler, p["n_examples"])
            info["features"] = sampler.features
            info["anchor"] = sampler.names(found["anchor"])
            results.append(info)
        width = max(len(r["features"]) for r in results)
        values = torch.zeros(len(texts), width)
        for i, r in enumerate(results):
            values[i, list(r["anchor_tuple"])] = 1.0
        labels = [clf.label(int(t)) for t in resolved]
        rules = [f"IF {' AND '.join(r['anchor']) or '(any text)'} THEN {lab}" for r, lab in zip(results, labels)]
        return self._result(values, resolved, scores, results, rules, labels, p)

    def _tabular(
        self, model: TabularModel, inputs: Any, target: TargetLike, p: dict[str, Any], progress: Progress
    ) -> Attribution:
        x = model.rows(inputs)
        background = model._background(p["background"])
        with torch.no_grad():
            scores = model(x)
        resolved = resolve_target(target, scores)
        gen = torch.Generator().manual_seed(0 if p["seed"] is None else int(p["seed"]))
        results = []
        for i in range(x.shape[0]):
            sampler = TabularSampler(
                model, x[i : i + 1], int(resolved[i]), background=background, n_bins=p["n_bins"],
                generator=gen, batch_size=max(p["batch_size"], 1),
            )
            found = self._search(sampler, p, progress)
            info = self._summary(found, sampler, p["n_examples"])
            info["features"] = [model.feature_name(f) for f in range(x.shape[1])]
            info["anchor"] = sampler.names(found["anchor"])
            info["anchor_features"] = sampler.feature_indices(found["anchor"])
            results.append(info)
        values = torch.zeros(x.shape[0], x.shape[1])
        for i, r in enumerate(results):
            values[i, r["anchor_features"]] = 1.0
        labels = [model.label(int(t)) for t in resolved]
        rules = [f"IF {' AND '.join(r['anchor']) or '(any row)'} THEN {lab}" for r, lab in zip(results, labels)]
        result = self._result(values, resolved, scores, results, rules, labels, p)
        result.inputs = x
        return result

    def _result(
        self, values: torch.Tensor, resolved: torch.Tensor, scores: torch.Tensor, results: list[dict[str, Any]],
        rules: list[str], labels: list[str], p: dict[str, Any],
    ) -> Attribution:
        extras: dict[str, Any] = {
            key: [r[key] for r in results]
            for key in ("anchor", "precision", "coverage", "features", "examples_hold", "examples_fail",
                        "n_samples", "converged")
        }
        extras["anchor_indices"] = [list(r["anchor_tuple"]) for r in results]
        if "anchor_features" in results[0]:
            extras["anchor_features"] = [r["anchor_features"] for r in results]
        extras["rule"] = rules
        extras["prediction"] = labels
        return Attribution(
            values=values, method=self.name, target=resolved.cpu(),
            scores=scores.gather(1, resolved.view(-1, 1)).squeeze(1).detach().cpu(), params=p, extras=extras,
            default_reduce="none", signed=False,
        )


def anchor_precision(
    model: TextClassifier | TabularModel,
    inputs: Any,
    anchor_indices: Sequence[int],
    *,
    n: int = 1000,
    seed: int = 12345,
    target: int | None = None,
    **options: Any,
) -> float:
    """Precision of an anchor on ``n`` fresh perturbations of one input (``options`` as in ``anchors``:
    ``level``, ``replace``, ``perturb`` for text; ``background``, ``n_bins`` for tabular)."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(model, TextClassifier):
        if target is None:
            target = int(model.scores([inputs]).argmax(1)[0])
        sampler: Any = TextSampler(
            model, inputs, target, level=options.get("level", "word"), replace=options.get("replace", "unk"),
            perturb=options.get("perturb"), generator=gen, batch_size=options.get("batch_size", 100),
        )
    elif isinstance(model, TabularModel):
        x = model.rows(inputs)[:1]
        if target is None:
            with torch.no_grad():
                target = int(model(x).argmax(1)[0])
        sampler = TabularSampler(
            model, x, target, background=model._background(options.get("background")),
            n_bins=options.get("n_bins", 4), generator=gen, batch_size=options.get("batch_size", 1000),
        )
    else:
        raise ModelError("anchor_precision takes a TextClassifier or a TabularModel")
    _, hold = sampler.sample(tuple(anchor_indices), n)
    return float(hold.float().mean())
