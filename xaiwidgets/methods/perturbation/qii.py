"""Quantitative Input Influence (QII): Datta, Sen & Zick 2016, "Algorithmic Transparency via Quantitative
Input Influence: Theory and Experiments with Learning Systems", IEEE S&P, doi:10.1109/SP.2016.42.

An *intervention* on a set ``S`` of features (tabular columns, image segments, words) redraws them from a
background distribution while the other features keep the input's values. ``redraw="marginals"`` (the
paper's, Sec. III) draws every feature of ``S`` independently from its own background values (the product
of the marginals); ``redraw="joint"`` takes whole background rows (SHAP's interventional game). Images draw
a segment's pixels from the background images (``baseline=``: one image, or a batch ``(K, C, H, W)``);
texts replace absent words (``replace=``, one source). The influence of ``S`` on a quantity of interest is
``iota(S) = Q(x) - E[Q(x_{-S} U_S)]`` (Eq. 3), with ``quantity``:

- ``"score"``: the target's score; ``"probability"``: its softmax probability (sigmoid of a single output);
- ``"label_flip"``: ``Q = 1[label = the input's label]``, so ``iota(S)`` is the probability that the
  predicted label flips (the paper's individual outcome, Sec. III-A);
- ``"group_gap"`` (table rows with ``group=`` a column): the gap ``rate(group) - rate(others)`` in the rate
  of predicting the positive class (``target``, class 1 by default) over all the rows explained, together
  (the paper's ``Q_disp`` is its absolute value; the signed gap keeps the sampling estimator unbiased).

``variant``: ``"unary"`` ``iota({i})``; ``"set"`` ``iota(subset)``; ``"marginal"``
``iota(subset + i) - iota(subset)``; ``"shapley"`` (Eq. 5) and ``"banzhaf"`` (Eq. 6) aggregate the marginal
influences over all sets. ``mode="exact"`` enumerates every set the variant needs and every redraw
(``K**|S|`` with ``K`` background values per feature; ``K`` for ``"joint"``); ``mode="sample"`` averages
``n_samples`` independent draws of (ordering or set, redraw), each an unbiased estimate, and reports the
standard error ``std / sqrt(n)`` (``extras["stderr"]``); ``"auto"`` is exact while it costs at most
``exact_limit`` model rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.errors import ParameterError
from ...core.progress import Progress
from ...core.targets import TargetLike, resolve_target, scores_from_output
from ..base import require
from ..modalities.progress import InputProgress
from ..registry import register
from ._common import FeatureMethod, assemble, check_batch_size, check_positive_int, check_seed, generator
from .shapley_solvers import all_coalitions, shapley_from_table

VARIANTS = ("unary", "set", "marginal", "shapley", "banzhaf")
QUANTITIES = ("score", "probability", "label_flip", "group_gap")
REDRAWS = ("marginals", "joint")
MODES = ("auto", "exact", "sample")
DEFAULT_BATCH = 64


def banzhaf_from_table(iota: torch.Tensor) -> torch.Tensor:
    """Banzhaf values ``2**-(M-1) sum_{S not containing i} (iota(S + i) - iota(S))`` from a table over all
    ``2**M`` sets (indexed as :func:`all_coalitions`)."""
    m = round(math.log2(iota.shape[0]))
    k = torch.arange(iota.shape[0], device=iota.device)
    out = torch.empty(m, dtype=torch.float64, device=iota.device)
    for i in range(m):
        without = k[((k >> i) & 1) == 0]
        out[i] = (iota[without | (1 << i)] - iota[without]).to(torch.float64).mean()
    return out


# --------------------------------------------------------------------------------------------------------
# interventions: model outputs of an input with some features redrawn


@dataclass
class Member:
    """One input of a QII game. ``outputs(src)`` gives float64 model outputs ``(R, C)`` for ``src``
    ``(R, M)`` long (-1: the input's value of a feature, ``k >= 0``: background source ``k``'s);
    ``quantity`` maps outputs to ``q`` ``(R,)``; the game's ``Q`` is ``sum(weight * E[q])`` over members."""

    outputs: Callable[[torch.Tensor], torch.Tensor]
    n_sources: int
    quantity: Callable[[torch.Tensor], torch.Tensor]
    weight: float = 1.0


def tensor_outputs(
    model: Callable[[torch.Tensor], Any], x: torch.Tensor, segments: torch.Tensor, sources: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Outputs of ``x`` ``(1, ...)`` with feature ``j`` (the entries where ``segments == j``) taken from
    ``sources[k]`` ``(K, ...)``: image segments from background images, or table columns from rows."""
    stacked = torch.cat([sources.to(x.dtype), x])  # row K is the input itself
    k = sources.shape[0]
    flat = segments.reshape(-1)

    def outputs(src: torch.Tensor) -> torch.Tensor:
        idx = torch.where(src < 0, k, src)
        pix = torch.index_select(idx, 1, flat).view(src.shape[0], *segments.shape)
        rows = torch.gather(stacked, 0, pix.expand(src.shape[0], *x.shape[1:]))
        with torch.no_grad():
            return scores_from_output(model(rows), rows.shape[0]).to(torch.float64)

    return outputs


def quantity_fn(quantity: str, target: int, label: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``q`` on outputs ``(R, C)``: the target's score or probability, or 1 where the label is ``label``
    (the input's own for ``label_flip``, the positive class for ``group_gap``)."""

    def q(out: torch.Tensor) -> torch.Tensor:
        if quantity == "score":
            return out[:, target]
        if quantity == "probability":
            return torch.sigmoid(out[:, 0]) if out.shape[1] == 1 else torch.softmax(out, 1)[:, target]
        labels = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)
        return (labels == label).to(torch.float64)

    return q


def predicted_label(out: torch.Tensor) -> torch.Tensor:
    return (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)


class QIIGame:
    """``Q`` of a set of members under interventions on coalitions ``z`` ``(T, M)`` (True: redrawn),
    exactly (every redraw) or for sampled redraws; model rows in chunks of ``batch_size``."""

    def __init__(self, members: list[Member], n_features: int, redraw: str, batch_size: int,
                 progress: Progress, label: str = "qii") -> None:
        self.members, self.m, self.redraw = members, int(n_features), redraw
        self.batch_size, self.progress, self.label = max(1, int(batch_size)), progress, label
        self.evaluations = 0
        self.total = 0

    def _marginal(self, k: int) -> bool:
        return self.redraw == "marginals" and k > 1

    def exact_rows(self, variant: str, z: torch.Tensor | None) -> int:
        """Model rows :meth:`expected` costs for the coalitions ``z`` (None: all ``2**M``)."""
        total = 0
        for mem in self.members:
            k = mem.n_sources
            if z is None:
                total += (1 + k) ** self.m if self._marginal(k) else 2**self.m * k
            else:
                total += sum(k**s for s in z.sum(1).tolist()) if self._marginal(k) else z.shape[0] * k
        return total

    def _q(self, mem: Member, src: torch.Tensor) -> torch.Tensor:
        out = []
        for a in range(0, src.shape[0], self.batch_size):
            part = src[a : a + self.batch_size]
            out.append(mem.quantity(mem.outputs(part)))
            self.evaluations += part.shape[0]
            self.progress.update(self.evaluations, max(self.total, self.evaluations), self.label)
        return torch.cat(out) if out else src.new_zeros(0, dtype=torch.float64)

    def expected(self, z: torch.Tensor) -> torch.Tensor:
        """Exact ``Q`` ``(T,)`` (float64): the expectation over every redraw of each coalition."""
        total = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
        for mem in self.members:
            k = mem.n_sources
            if self._marginal(k):
                srcs, owners, weights = [], [], []
                for t, row in enumerate(z):
                    idx = row.nonzero().flatten()
                    s = idx.numel()
                    combos = (torch.arange(k**s, device=z.device)[:, None] // k ** torch.arange(s, device=z.device)) % k
                    src = torch.full((k**s, self.m), -1, dtype=torch.long, device=z.device)
                    src[:, idx] = combos
                    srcs.append(src)
                    owners.append(torch.full((k**s,), t, dtype=torch.long, device=z.device))
                    weights.append(torch.full((k**s,), float(k) ** -s, dtype=torch.float64, device=z.device))
                src, owner, weight = torch.cat(srcs), torch.cat(owners), torch.cat(weights)
            else:
                draws = torch.arange(k, device=z.device)
                src = torch.where(z[:, None, :], draws[None, :, None], -1).reshape(-1, self.m)
                owner = torch.arange(z.shape[0], device=z.device).repeat_interleave(k)
                weight = torch.full((src.shape[0],), 1.0 / k, dtype=torch.float64, device=z.device)
            q = self._q(mem, src)
            total += mem.weight * torch.zeros_like(total).index_add_(0, owner, weight * q)
        return total

    def sampled(self, z: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``Q`` ``(n, T)`` for coalitions ``z`` ``(n, T, M)``: one redraw per member and sample, shared by
        the sample's coalitions (common random numbers)."""
        n, t, _ = z.shape
        total = torch.zeros(n, t, dtype=torch.float64, device=z.device)
        for mem in self.members:
            k = mem.n_sources
            if self._marginal(k):
                u = torch.randint(k, (n, self.m), generator=gen, device=z.device)
            else:
                u = torch.randint(k, (n, 1), generator=gen, device=z.device).expand(n, self.m)
            src = torch.where(z, u[:, None, :], -1).reshape(-1, self.m)
            total += mem.weight * self._q(mem, src).view(n, t)
        return total


# --------------------------------------------------------------------------------------------------------
# the variants


def _coalition(m: int, players: Sequence[int], device: torch.device) -> torch.Tensor:
    z = torch.zeros(m, dtype=torch.bool, device=device)
    z[list(players)] = True
    return z


def fixed_coalitions(variant: str, m: int, subset: Sequence[int], device: torch.device) -> torch.Tensor:
    """The coalitions unary/set/marginal QII need; row 0 is the empty set."""
    empty = torch.zeros(1, m, dtype=torch.bool, device=device)
    if variant == "unary":
        return torch.cat([empty, torch.eye(m, dtype=torch.bool, device=device)])
    base = _coalition(m, subset, device)
    if variant == "set":
        return torch.stack([empty[0], base])
    return torch.cat([empty, base[None], base[None] | torch.eye(m, dtype=torch.bool, device=device)])


def from_fixed(variant: str, q: torch.Tensor, m: int, subset: Sequence[int]) -> torch.Tensor:
    """Per-feature influence ``(..., M)`` from ``Q`` over :func:`fixed_coalitions` ``(..., T)``."""
    if variant == "unary":
        return q[..., :1] - q[..., 1:]
    if variant == "set":
        out = torch.zeros(*q.shape[:-1], m, dtype=torch.float64, device=q.device)
        out[..., list(subset)] = (q[..., :1] - q[..., 1:2]).expand(*q.shape[:-1], len(subset))
        return out
    phi = q[..., 1:2] - q[..., 2:]
    phi[..., list(subset)] = 0.0
    return phi


def exact_influence(game: QIIGame, variant: str, subset: Sequence[int], device: torch.device) -> torch.Tensor:
    m = game.m
    if variant in ("shapley", "banzhaf"):
        q = game.expected(all_coalitions(m, device))
        iota = q[0] - q
        return shapley_from_table(iota) if variant == "shapley" else banzhaf_from_table(iota)
    return from_fixed(variant, game.expected(fixed_coalitions(variant, m, subset, device)), m, subset)


def sampled_influence(
    game: QIIGame, variant: str, subset: Sequence[int], n: int, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(n, M)`` independent unbiased estimates of the influences."""
    m = game.m
    if variant == "shapley":  # Eq. 5 as an expectation over orderings: the marginal influence of each player
        perms = torch.rand(n, m, generator=gen, device=device).argsort(1)
        position = perms.argsort(1)
        z = position[:, None, :] < torch.arange(1, m + 1, device=device)[None, :, None]  # prefixes 1..M
        q0 = game.expected(torch.zeros(1, m, dtype=torch.bool, device=device))
        chain = torch.cat([q0.expand(n, 1), game.sampled(z, gen)], 1)
        out = torch.empty(n, m, dtype=torch.float64, device=device)
        return out.scatter_(1, perms, chain[:, :-1] - chain[:, 1:])
    if variant == "banzhaf":  # Eq. 6: a uniform random set, and each player added to or removed from it
        base = torch.rand(n, m, generator=gen, device=device) < 0.5
        flips = base[:, None, :] ^ torch.eye(m, dtype=torch.bool, device=device)[None]
        q = game.sampled(torch.cat([base[:, None, :], flips], 1), gen)
        sign = torch.where(base, 1.0, -1.0).to(torch.float64)
        return sign * (q[:, 1:] - q[:, :1])
    z = fixed_coalitions(variant, m, subset, device)
    return from_fixed(variant, game.sampled(z[None].expand(n, *z.shape), gen), m, subset)


def sampled_rows(variant: str, m: int, n: int, subset: Sequence[int]) -> int:
    """Coalitions :func:`sampled_influence` evaluates (per member)."""
    per = {"shapley": m, "banzhaf": m + 1, "unary": m + 1, "set": 2}.get(variant, m + 2)
    return n * per


# --------------------------------------------------------------------------------------------------------
# the method


@register
class QII(FeatureMethod):
    """Quantitative Input Influence of features (segments, columns or words); see the module docstring."""

    name, reference = "qii", "Datta, Sen & Zick 2016, IEEE S&P, doi:10.1109/SP.2016.42"
    defaults: ClassVar[dict[str, Any]] = {
        "variant": "shapley",
        "quantity": "score",
        "redraw": "marginals",
        "mode": "auto",
        "n_samples": 64,
        "exact_limit": 2**16,
        "subset": None,
        "group": None,
        "group_value": None,
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "batch_size": None,
        "seed": 0,
    }
    #: what the text and tabular paths add (as the other perturbation methods)
    modality_params: ClassVar[dict[str, dict[str, Any]]] = {
        "text": {"level": None, "replace": None}, "tabular": {"background": None}}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        for key, choices in (("variant", VARIANTS), ("quantity", QUANTITIES), ("redraw", REDRAWS),
                             ("mode", MODES)):
            require(params[key] in choices, f"{key} must be one of {', '.join(choices)}; got {params[key]!r}")
        check_positive_int(params, "n_samples", 2)
        check_positive_int(params, "exact_limit")
        check_batch_size(params)
        check_seed(params)
        if params["variant"] == "set":
            require(params["subset"] is not None, "variant='set' needs subset=[feature indices] (the set S)")
        if params["quantity"] == "group_gap":
            require(False, "quantity='group_gap' compares groups of table rows: explain rows of a "
                           "xw.TabularModel and pass group= (a column index or name)")

    # images ------------------------------------------------------------------------------------------------
    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        with torch.no_grad():
            scores_all = scores_from_output(self.model(inputs), inputs.shape[0])
        resolved = resolve_target(target, scores_all)
        labels = predicted_label(scores_all)
        games = self.games(inputs, resolved, params, progress)
        qii_games = []
        for i, g in enumerate(games):
            mk = g.masker
            member = Member(tensor_outputs(self.model, mk.x, mk.segments, mk.baseline), mk.baseline.shape[0],
                            quantity_fn(params["quantity"], int(resolved[i]), int(labels[i])))
            qii_games.append(QIIGame([member], mk.n_features, params["redraw"],
                                     params["batch_size"] or DEFAULT_BATCH, progress, f"qii: input {i + 1}"))
        phis, extras = run_games(qii_games, params, inputs.device)
        values, common = assemble(games, phis, inputs, resolved, scores_all.gather(1, resolved[:, None])[:, 0])
        common["n_evaluations"] = [g.evaluations for g in qii_games]
        return Attribution(values=values, method=self.name, target=resolved,
                           scores=scores_all.gather(1, resolved[:, None])[:, 0], extras={**common, **extras})

    # texts and table rows: the modality hooks of Method (the base checks the parameters, including
    # ``modality_params``, and holds the model's state)
    def explain_text(self, classifier: Any, inputs: Any, target: TargetLike, params: dict[str, Any],
                     progress: Progress) -> Attribution:
        own, resolved = self._split_modality_params("text", params)
        return explain_text_qii(self, inputs, target, resolved, own, progress)

    def explain_tabular(self, model: Any, inputs: Any, target: TargetLike, params: dict[str, Any],
                        progress: Progress) -> Attribution:
        own, resolved = self._split_modality_params("tabular", params)
        return explain_tabular_qii(self, inputs, target, resolved, own, progress)

    def _split_modality_params(self, modality: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(modality's own parameters, resolved method parameters)``; image-only ones are refused."""
        user = dict(params)
        own = {k: user.pop(k) for k in list(user) if k in self.modality_params[modality]}
        for key in ("segments", "segmentation_params", "baseline"):
            require(key not in user, f"{key}= is for images; " + (
                "for a text choose level= and replace=" if modality == "text" else "pass background=(B, d) rows"))
        return own, {**self.defaults, **user}

def run_games(games: list[QIIGame], params: dict[str, Any], device: torch.device
              ) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """Per-game influences, exactly or by sampling, and the extras that describe them."""
    variant, mode, subset = params["variant"], params["mode"], params["subset"]
    phis, stderrs, exact, bases = [], [], [], []
    for index, game in enumerate(games):
        game.progress = InputProgress(game.progress, index, len(games))
        subset_i = check_subset(subset, game.m, variant)
        every = variant in ("shapley", "banzhaf")
        rows = game.exact_rows(variant, None if every else fixed_coalitions(variant, game.m, subset_i, device))
        if mode == "exact" and rows > params["exact_limit"]:
            raise ParameterError(
                f"exact QII of input {index + 1} needs {rows} model rows (> exact_limit={params['exact_limit']}): "
                "fewer features or background values, redraw='joint', a larger exact_limit, or mode='sample'"
            )
        base = float(game.expected(torch.zeros(1, game.m, dtype=torch.bool, device=device))[0])
        if mode == "exact" or (mode == "auto" and rows <= params["exact_limit"]):
            game.total = game.evaluations + int(rows)
            phis.append(exact_influence(game, variant, subset_i, device))
            stderrs.append(torch.zeros(game.m, dtype=torch.float64))
            exact.append(True)
        else:
            game.total = game.evaluations + sampled_rows(variant, game.m, params["n_samples"], subset_i) * len(
                game.members)
            gen = generator(None if params["seed"] is None else params["seed"] + index, device)
            est = sampled_influence(game, variant, subset_i, params["n_samples"], gen, device)
            phis.append(est.mean(0))
            stderrs.append((est.std(0) / math.sqrt(est.shape[0])).cpu())
            exact.append(False)
        bases.append(base)
    extras: dict[str, Any] = {
        "influence": [p.detach().cpu() for p in phis],
        "stderr": stderrs, "exact": exact, "variant": variant, "quantity": params["quantity"],
        "redraw": params["redraw"], "quantity_value": torch.tensor(bases, dtype=torch.float64),
        "n_samples": [0 if e else params["n_samples"] for e in exact],
    }
    if variant == "set":
        first = [check_subset(subset, g.m, variant)[0] for g in games]
        extras["set_influence"] = torch.tensor([float(p[j]) for p, j in zip(phis, first)], dtype=torch.float64)
    return phis, extras


def check_subset(subset: Any, m: int, variant: str) -> list[int]:
    if variant not in ("set", "marginal"):
        return []
    items = [] if subset is None else list(subset)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < m for i in items) or \
            len(set(items)) != len(items):
        raise ParameterError(f"subset must hold distinct feature indices in 0..{m - 1}; got {subset!r}")
    if variant == "set" and not items:
        raise ParameterError("variant='set' needs a non-empty subset")
    return items


# --------------------------------------------------------------------------------------------------------
# texts and table rows


def explain_text_qii(method: QII, inputs: Any, target: TargetLike, params: dict[str, Any], own: dict[str, Any],
                     progress: Progress) -> Attribution:
    """QII over the words (or tokens) of texts; a redrawn word is replaced (``replace=``, one source)."""
    from ..modalities.text import as_texts, check_level, check_replace, text_extras

    clf = method.model
    method.validate(torch.zeros(1), params)
    texts = as_texts(inputs)
    level = check_level(own.get("level"), embeddings=False)
    replace = check_replace(clf, own.get("replace"), method.text_replace)
    encs = [clf.encode(t) for t in texts]
    scores = clf.scores(texts).to(torch.float64)
    resolved = resolve_target(target, scores).cpu()
    labels = predicted_label(scores)
    batch = params["batch_size"] or DEFAULT_BATCH
    games = []
    for i, enc in enumerate(encs):
        m = len(clf.features(enc, level))
        require(m >= 1, f"text {i} has no {level}s to explain")

        def outputs(src: torch.Tensor, enc: Any = enc) -> torch.Tensor:
            return clf.score_coalitions(enc, src < 0, level=level, replace=replace, batch_size=batch).to(torch.float64)

        member = Member(outputs, 1, quantity_fn(params["quantity"], int(resolved[i]), int(labels[i])))
        games.append(QIIGame([member], m, params["redraw"], batch, progress, f"qii: text {i + 1}"))
    phis, extras = run_games(games, params, clf.device)
    extras.update(text_extras(clf, texts, encs, level, resolved))
    extras["n_evaluations"] = [g.evaluations for g in games]
    return feature_result(method, phis, resolved, extras, {**params, "level": level, "replace": replace},
                          scores.gather(1, resolved[:, None].to(scores.device))[:, 0].cpu())


def group_members(x: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """``(membership (N,) bool, column)`` of the group from ``group`` (index or name) and ``group_value``."""
    group, value = params["group"], params["group_value"]
    names = params.get("_names") or []
    if isinstance(group, str):
        require(group in names, f"group={group!r} is not a feature name; the features are: {', '.join(names)}")
        group = names.index(group)
    require(isinstance(group, int) and not isinstance(group, bool) and 0 <= group < x.shape[1],
            f"group must be a column index in 0..{x.shape[1] - 1} or a feature name; got {params['group']!r}")
    col = x[:, group]
    if value is None:
        distinct = torch.unique(col)
        require(distinct.numel() == 2, f"the group column {group} has {distinct.numel()} distinct values in the rows; "
                                       "pass group_value= (rows equal to it form the group)")
        value = float(distinct[1])
    members = col == float(value)
    require(bool(members.any()) and not bool(members.all()),
            "the group and the other rows must both be non-empty to compare their positive rates")
    return members, group


def explain_tabular_qii(method: QII, inputs: Any, target: TargetLike, params: dict[str, Any],
                        own: dict[str, Any], progress: Progress) -> Attribution:
    """QII over the columns of table rows; redrawn columns come from the background rows."""
    from ..modalities.tabular import tabular_extras

    model = method.model
    x = model.rows(inputs)
    background = model._background(own.get("background"))
    gap = params["quantity"] == "group_gap"
    method.validate(x, {**params, "quantity": "score"} if gap else params)
    with torch.no_grad():
        scores = model(x).to(torch.float64)
    d = x.shape[1]
    segments = torch.arange(d, device=x.device)
    batch = params["batch_size"] or 4096
    label = f"qii: {x.shape[0]} rows"
    if gap:
        require(params["group"] is not None, "quantity='group_gap' needs group= (the column, index or name, whose "
                                             "groups' positive rates are compared); none was given")
        require(target is None or (isinstance(target, int) and not isinstance(target, bool)),
                "quantity='group_gap' takes target= as the positive class (one int)")
        positive = 1 if target is None and scores.shape[1] > 1 else int(target or 0)
        members, column = group_members(x, {**params, "_names": [model.feature_name(i) for i in range(d)]})
        na, nb = int(members.sum()), int((~members).sum())
        parts = [Member(tensor_outputs(model, x[i : i + 1], segments, background), background.shape[0],
                        quantity_fn("group_gap", positive, positive), 1 / na if members[i] else -1 / nb)
                 for i in range(x.shape[0])]
        games = [QIIGame(parts, d, params["redraw"], batch, progress, label)]
        resolved = torch.tensor([positive])
    else:
        resolved = resolve_target(target, scores).cpu()
        labels = predicted_label(scores)
        games = [QIIGame([Member(tensor_outputs(model, x[i : i + 1], segments, background), background.shape[0],
                                 quantity_fn(params["quantity"], int(resolved[i]), int(labels[i])))],
                         d, params["redraw"], batch, progress, label) for i in range(x.shape[0])]
    phis, extras = run_games(games, params, x.device)
    extras.update(tabular_extras(model, x, resolved if not gap else resolved.expand(x.shape[0])))
    extras["n_evaluations"] = [g.evaluations for g in games]
    extras["background_size"] = int(background.shape[0])
    if gap:
        extras.update(group_column=column, group_members=members.cpu(), group_gap=extras["quantity_value"].clone())
        out_scores = extras["quantity_value"]
    else:
        out_scores = scores.gather(1, resolved[:, None].to(scores.device))[:, 0].cpu()
    out = feature_result(method, phis, resolved, extras, {**params, **own}, out_scores)
    out.inputs = x
    return out


def feature_result(method: QII, phis: list[torch.Tensor], resolved: torch.Tensor, extras: dict[str, Any],
                   params: dict[str, Any], scores: torch.Tensor) -> Attribution:
    """Values ``(N, M)`` over the features (zero-padded to the longest input), as the text and tabular
    paths of the other perturbation methods."""
    width = max(p.numel() for p in phis)
    values = torch.zeros(len(phis), width)
    for i, p in enumerate(phis):
        values[i, : p.numel()] = p.cpu()
    extras["output_value"] = scores.to(torch.float64)
    return Attribution(values=values, method=method.name, target=resolved.cpu(), scores=scores, params=params,
                       inputs=None, extras=extras, default_reduce="none", signed=True)


__all__ = ["QII", "QIIGame", "banzhaf_from_table"]
