"""Methods reach texts and table rows through their hooks, not through lists of names: ``modalities`` is
derived from the hooks a class defines, a new coalition method needs only ``explain_game`` to explain texts
and rows, and the names the hooks replaced warn with their successor. Tiny seeded models."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import ModelError, ParameterError
from xaiwidgets.core.tabular import TabularModel
from xaiwidgets.core.text import SimpleTokenizer, TextClassifier
from xaiwidgets.methods.base import GameResult, Method

VOCAB = ["[PAD]", "[UNK]", "[MASK]", "a", "good", "bad", "film", "not"]


class LeaveOneOut(Method):
    """Toy coalition method (unregistered): ``phi_i = v(all) - v(all but i)``."""

    name = "toy_leave_one_out"
    family = "perturbation"

    def explain_game(self, game: Any, params: dict[str, Any], progress: Any, *, index: int = 0,
                     stream: Any = None) -> GameResult:
        m = game.n_features
        z = torch.ones(m + 1, m, dtype=torch.bool)
        z[1:] &= ~torch.eye(m, dtype=torch.bool)
        v = game(z)
        return GameResult(v[0] - v[1:], float(v[0]), {"v_all": v[0]})


class Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(len(VOCAB), 4), nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).float()
        return self.out(torch.tanh((self.emb(ids) * m).sum(1) / m.sum(1).clamp_min(1)))


@pytest.fixture(scope="module")
def text_clf() -> TextClassifier:
    return TextClassifier(Bag().eval(), SimpleTokenizer(VOCAB, mask_token="[MASK]"), labels=["neg", "pos"])


@pytest.fixture(scope="module")
def table() -> TabularModel:
    torch.manual_seed(1)
    return TabularModel(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval(),
                        background=torch.randn(6, 3))


def test_modalities_follow_the_hooks() -> None:
    class Tensors(Method):
        name = "toy_tensors"

        def _attribute(self, inputs, target, params, progress):  # pragma: no cover - never run
            raise NotImplementedError

    class ImagesOnly(Tensors):
        name = "toy_images"
        tabular_strategy = None

    class Embeddings(Tensors):
        name = "toy_embeddings"
        text_strategy = "embeddings"

    assert LeaveOneOut.modalities == ("tabular", "text")  # images need a tensor path (_attribute)
    assert Tensors.modalities == ("image", "tabular")
    assert ImagesOnly.modalities == ("image",)
    assert Embeddings.modalities == ("image", "tabular", "text")
    assert xw.methods.get_method("anchors").modalities == ("tabular", "text")
    assert xw.methods.get_method("attention_rollout").modalities == ("image", "text")
    with pytest.raises(TypeError, match="text_strategy"):
        type("Bad", (Method,), {"name": "toy_bad", "text_strategy": "tokens"})


def test_a_declared_modalities_tuple_must_agree_with_the_hooks() -> None:
    """A class that still declares ``modalities`` (the old way) fails at definition when its hooks say
    otherwise, instead of being listed for inputs it does not explain."""
    with pytest.raises(TypeError, match="declares modalities"):
        type("ImagesOnly", (Method,), {"name": "images_only", "modalities": ("image",),
                                       "_attribute": lambda self, *a: None})
    agreeing = type("ImagesOnly2", (Method,), {"name": "images_only2", "modalities": ("image",),
                                               "tabular_strategy": None, "_attribute": lambda self, *a: None})
    assert agreeing.modalities == ("image",)


def test_a_game_hook_explains_texts_and_rows(text_clf: TextClassifier, table: TabularModel) -> None:
    """The default text and tabular paths play the method's ``explain_game`` on each input's game: the values
    are the definition on the adapters' own coalition scores (float64 sums of float32 scores: 1e-6)."""
    a = LeaveOneOut(text_clf).attribute(["a good film", "not bad"], target=1, progress=False)
    z = torch.cat([torch.ones(1, 3, dtype=torch.bool), ~torch.eye(3, dtype=torch.bool)])  # all, then all but i
    v = text_clf.score_coalitions("a good film", z, level="word", replace="mask")[:, 1].double()
    torch.testing.assert_close(a.values[0].double(), v[0] - v[1:], atol=1e-6, rtol=0)
    assert a.values.shape == (2, 3) and a.extras["features"][1] == ["not", "bad"]
    assert a.extras["replace"] == "mask" and a.extras["level"] == "word"
    torch.testing.assert_close(a.extras["v_all"], a.extras["output_value"])  # 0-dim extras are stacked
    rows = torch.randn(2, 3, generator=torch.Generator().manual_seed(2))
    b = LeaveOneOut(table).attribute(rows, target=0, progress=False)
    for i in range(2):
        w = table.score_coalitions(rows[i], z, table.background)[:, 0].double()
        torch.testing.assert_close(b.values[i].double(), w[0] - w[1:], atol=1e-6, rtol=0)
    assert b.extras["background_size"] == 6
    with pytest.raises(ParameterError, match="'levle'"):
        LeaveOneOut(text_clf).attribute("a good film", levle="word")


def test_unsupported_inputs_name_the_methods_that_explain_them(text_clf: TextClassifier,
                                                               table: TabularModel) -> None:
    with pytest.raises(ParameterError, match=r"does not explain texts.*kernel_shap"):
        xw.attribute(text_clf, "a good film", "gradcam")
    with pytest.raises(ParameterError, match=r"does not explain table rows.*anchors"):
        xw.attribute(table, torch.zeros(1, 3), "attention_rollout")
    with pytest.raises(ModelError, match="TextClassifier"):
        xw.attribute(nn.Linear(3, 2), torch.zeros(1, 3), "anchors")


def test_replaced_names_warn_with_their_successor(text_clf: TextClassifier) -> None:
    enc = text_clf.encode("a good film")
    with pytest.warns(DeprecationWarning, match="level='token'"):
        tokens = text_clf.token_values(torch.ones(1, 3, 4), enc)
    torch.testing.assert_close(tokens, torch.full((1, 3), 4.0))
    with pytest.warns(DeprecationWarning, match="score_coalitions"):
        game = text_clf.coalition_game("a good film", 1, level="word")
    z = torch.ones(1, 3, dtype=torch.bool)
    torch.testing.assert_close(game(z), text_clf.score_coalitions("a good film", z, level="word")[:, 1])
    from xaiwidgets.methods import modalities

    with pytest.warns(DeprecationWarning, match="available"):
        names = modalities.TEXT_METHODS
    assert "lime" in names and "gradcam" not in names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert modalities.is_adapter(text_clf) and not modalities.is_adapter(nn.Linear(3, 2))


@pytest.mark.parametrize(("old", "new"), [
    ("xaiwidgets.methods.gradients", "xaiwidgets.methods.gradient.gradients"),
    ("xaiwidgets.methods.integrated_gradients", "xaiwidgets.methods.gradient.integrated_gradients"),
    ("xaiwidgets.methods.anchors", "xaiwidgets.methods.perturbation.anchors"),
    ("xaiwidgets.methods._chunks", "xaiwidgets.core.batching"),
    ("xaiwidgets.methods.perturbation.games", "xaiwidgets.methods.perturbation.shapley_solvers"),
    ("xaiwidgets.methods.modalities.games", "xaiwidgets.methods.modalities.coalition_games"),
])
def test_moved_modules_keep_their_old_path_with_a_warning(old: str, new: str) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_moved_modules_are_attributes_of_their_old_package() -> None:
    import sys

    sys.modules.pop("xaiwidgets.methods.smoothgrad", None)
    vars(xw.methods).pop("smoothgrad", None)
    with pytest.warns(DeprecationWarning, match="gradient.smoothgrad"):
        assert xw.methods.smoothgrad.SmoothGrad is xw.methods.SmoothGrad
