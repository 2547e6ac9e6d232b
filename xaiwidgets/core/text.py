"""Text adapter: a tokenizer plus a torch model mapping token ids (and attention mask) to class scores.

Two ways to explain a text:
- gradient methods work at the embedding layer: :meth:`TextClassifier.embedding_model` is a module on
  float embeddings ``(N, T, D)``, so any input-space method runs on ``classifier.embed(text)``; token
  attributions are the signed sum over the embedding dimension and word pieces merge into words for display
  (:meth:`TextClassifier.merge_words`); :mod:`xaiwidgets.methods.modalities.text` does both.
- model-agnostic estimators (LIME, KernelSHAP, Anchors) treat the tokens (or words) as features:
  :meth:`TextClassifier.score_coalitions` maps a coalition matrix ``(S, M)`` to scores ``(S, C)`` by
  replacing absent tokens with ``[UNK]``, ``[MASK]`` or padding, or by removing them.

Works with Hugging Face ``transformers`` models and tokenizers and with a plain vocabulary model
(``TextClassifier(model, vocab=...)``: a dict token -> id or a list of tokens, whitespace/punctuation
tokenisation).
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .device import model_device
from .errors import InputError, LayerError, ModelError, ParameterError
from .layers import get_layer
from .targets import scores_from_output

REPLACEMENTS = ("unk", "mask", "pad", "remove")
LEVELS = ("token", "word")
_WORD_RE = re.compile(r"\w+|[^\w\s]")


class SimpleTokenizer:
    """Lower-cased word/punctuation tokeniser over a fixed vocabulary (unknown words map to ``unk_token``)."""

    def __init__(
        self,
        vocab: dict[str, int] | Sequence[str],
        *,
        unk_token: str = "[UNK]",
        pad_token: str = "[PAD]",
        mask_token: str | None = None,
        lower: bool = True,
    ) -> None:
        self.vocab = dict(vocab) if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
        for tok in (unk_token, pad_token):
            if tok not in self.vocab:
                raise ParameterError(f"the vocabulary has no {tok!r} token; add it or pass unk_token=/pad_token=")
        self.inverse = {i: t for t, i in self.vocab.items()}
        self.unk_token, self.pad_token, self.mask_token = unk_token, pad_token, mask_token
        self.unk_token_id = self.vocab[unk_token]
        self.pad_token_id = self.vocab[pad_token]
        self.mask_token_id = self.vocab.get(mask_token) if mask_token else None
        self.lower = lower

    def split(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


@dataclass
class Encoding:
    """One tokenised text: ids ``(1, T)``, mask ``(1, T)``, tokens, special-token flags and word ids."""

    text: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    tokens: list[str]
    special: torch.Tensor  # (T,) bool
    word_ids: list[int | None]
    words: list[str]
    #: per token ``(start, end)`` character offsets in ``text`` (None for special tokens); None when the
    #: tokenizer gives no offsets (slow Hugging Face tokenizers)
    token_spans: list[tuple[int, int] | None] | None = None
    #: per word ``(start, end)`` character offsets in ``text``; None when unknown
    word_spans: list[tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def positions(self) -> torch.Tensor:
        """Indices of the non-special tokens (the token-level features)."""
        return torch.nonzero(~self.special).flatten()


def _is_hf_model(model: object) -> bool:
    return isinstance(model, nn.Module) and hasattr(model, "config") and hasattr(model, "get_input_embeddings")


def _takes_mask(model: object) -> bool:
    try:
        sig = inspect.signature(model.forward if isinstance(model, nn.Module) else model)
    except (TypeError, ValueError):
        return False
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return "attention_mask" in sig.parameters or len(params) >= 2 or any(
        p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()
    )


class TextClassifier:
    """A text classifier: ``tokenizer`` + ``model`` mapping token ids (and attention mask) to ``(N, C)``.

    ``model`` is a Hugging Face model (called with ``input_ids=``, ``attention_mask=``; ``.logits`` read),
    or any module/callable called as ``model(ids, mask)`` (when its forward takes two arguments or an
    ``attention_mask``) or ``model(ids)``; ``forward=fn(model, ids, mask)`` overrides the call. Give either a
    Hugging Face ``tokenizer`` or a ``vocab`` (plain vocabulary model). ``embedding`` names the embedding
    layer (default: ``model.get_input_embeddings()`` or the first ``nn.Embedding``). ``pooling`` says how the
    model reads its tokens (``"cls"`` or ``"mean"``) for the attention-based methods.
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        tokenizer: Any = None,
        *,
        vocab: dict[str, int] | Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        embedding: str | nn.Module | None = None,
        forward: Callable[[Any, torch.Tensor, torch.Tensor], Any] | None = None,
        max_length: int = 256,
        pooling: str = "cls",
        name: str = "model",
    ) -> None:
        if not callable(model):
            raise ModelError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
        if tokenizer is None and vocab is None:
            raise ParameterError("give a tokenizer (e.g. AutoTokenizer.from_pretrained(...)) or a vocab")
        if pooling not in ("cls", "mean"):
            raise ParameterError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else SimpleTokenizer(vocab)  # type: ignore[arg-type]
        self.labels = list(labels) if labels is not None else None
        self._embedding = embedding
        self._forward = forward
        self._hf = _is_hf_model(model)
        self._with_mask = self._hf or _takes_mask(model)
        self.max_length = int(max_length)
        self.pooling = pooling
        self.name = name

    def __repr__(self) -> str:
        n = len(self.labels) if self.labels else "?"
        return f"TextClassifier({self.name}, {n} classes)"

    # ------------------------------------------------------------------------------------------------
    # basics

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def label(self, index: int) -> str:
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class {index}"

    def eval(self) -> TextClassifier:
        if isinstance(self.model, nn.Module):
            self.model.eval()
        return self

    def _special_id(self, kind: str) -> int:
        tok = self.tokenizer
        value = getattr(tok, f"{kind}_token_id", None)
        if value is None:
            hint = {"mask": "this tokenizer has no [MASK] token; use replace='unk' or 'pad'",
                    "unk": "this tokenizer has no unknown token; use replace='pad' or 'remove'",
                    "pad": "this tokenizer has no padding token; set tokenizer.pad_token"}[kind]
            raise ParameterError(hint)
        return int(value)

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        value = getattr(tok, "pad_token_id", None)
        return int(value) if value is not None else 0

    # ------------------------------------------------------------------------------------------------
    # tokenisation

    def encode(self, text: str) -> Encoding:
        """Tokenise one text (special tokens included, truncated to ``max_length``)."""
        if not isinstance(text, str):
            raise InputError(f"text must be a str, got {type(text).__name__}; pass one text at a time")
        if not text.strip():
            raise InputError("the text is empty; give at least one word")
        if isinstance(self.tokenizer, SimpleTokenizer):
            return self._encode_simple(text)
        return self._encode_hf(text)

    def _encode_simple(self, text: str) -> Encoding:
        tok = self.tokenizer
        pieces = tok.split(text)[: self.max_length]
        tokens = [p for p, _, _ in pieces]
        ids = [tok.vocab.get(p.lower() if tok.lower else p, tok.unk_token_id) for p in tokens]
        n = len(ids)
        return Encoding(
            text=text,
            input_ids=torch.tensor([ids], dtype=torch.long),
            attention_mask=torch.ones(1, n, dtype=torch.long),
            tokens=tokens,
            special=torch.zeros(n, dtype=torch.bool),
            word_ids=list(range(n)),
            words=tokens,
            token_spans=[(a, b) for _, a, b in pieces],
            word_spans=[(a, b) for _, a, b in pieces],
        )

    def _encode_hf(self, text: str) -> Encoding:
        tok = self.tokenizer
        fast = bool(getattr(tok, "is_fast", False))
        kwargs: dict[str, Any] = {"truncation": True, "max_length": self.max_length}
        enc = tok(text, return_offsets_mapping=True, **kwargs) if fast else tok(text, **kwargs)
        ids = list(enc["input_ids"])
        tokens = tok.convert_ids_to_tokens(ids)
        special = tok.get_special_tokens_mask(ids, already_has_special_tokens=True)
        special_t = torch.tensor(special, dtype=torch.bool)
        if fast:
            word_ids = [None if s else w for w, s in zip(enc.word_ids(), special)]
            spans: dict[int, list[int]] = {}
            for w, (a, b) in zip(word_ids, enc["offset_mapping"]):
                if w is not None:
                    spans.setdefault(w, [a, b])[1] = b
            order = sorted(spans)
            remap = {w: i for i, w in enumerate(order)}
            word_ids = [None if w is None else remap[w] for w in word_ids]
            words = [text[spans[w][0] : spans[w][1]] for w in order]
            token_spans = [None if s else (int(a), int(b)) for s, (a, b) in zip(special, enc["offset_mapping"])]
            word_spans = [(int(spans[w][0]), int(spans[w][1])) for w in order]
        else:  # slow tokenizer: merge WordPiece continuations ("##")
            token_spans = word_spans = None
            word_ids, words = [], []
            for t, s in zip(tokens, special):
                if s:
                    word_ids.append(None)
                elif t.startswith("##") and words:
                    words[-1] += t[2:]
                    word_ids.append(len(words) - 1)
                else:
                    words.append(t)
                    word_ids.append(len(words) - 1)
        mask = enc.get("attention_mask", [1] * len(ids))
        return Encoding(
            text=text,
            input_ids=torch.tensor([ids], dtype=torch.long),
            attention_mask=torch.tensor([list(mask)], dtype=torch.long),
            tokens=tokens,
            special=special_t,
            word_ids=word_ids,
            words=words,
            token_spans=token_spans,
            word_spans=word_spans,
        )

    def encode_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``(input_ids, attention_mask)`` ``(N, T)`` on the model's device."""
        encs = [self.encode(t) for t in texts]
        length = max(len(e) for e in encs)
        ids = torch.full((len(encs), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(encs), length, dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, : len(e)] = e.input_ids[0]
            mask[i, : len(e)] = e.attention_mask[0]
        return ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------------------------------------
    # forward

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C)`` scores for token ids ``(N, T)`` (mask of ones when omitted)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self._forward is not None:
            out = self._forward(self.model, input_ids, attention_mask)
        elif self._hf:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        elif self._with_mask:
            out = self.model(input_ids, attention_mask)
        else:
            out = self.model(input_ids)
        return scores_from_output(out, input_ids.shape[0])

    @torch.no_grad()
    def scores(self, texts: str | Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """``(N, C)`` scores of texts, padded per chunk of ``batch_size``."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = []
        for a in range(0, len(texts), batch_size):
            ids, mask = self.encode_batch(texts[a : a + batch_size])
            out.append(self(ids, mask))
        return torch.cat(out)

    def predict_proba(self, texts: str | Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """``(N, C)`` softmax probabilities of texts."""
        return self.scores(texts, batch_size).float().softmax(1)

    # ------------------------------------------------------------------------------------------------
    # embeddings (gradient methods)

    @property
    def embedding_layer(self) -> nn.Module:
        """The token embedding module whose output gradient methods attribute to."""
        if not isinstance(self.model, nn.Module):
            raise LayerError("gradient methods need an nn.Module model with an embedding layer")
        if self._embedding is not None:
            return get_layer(self.model, self._embedding)
        if hasattr(self.model, "get_input_embeddings"):
            layer = self.model.get_input_embeddings()
            if isinstance(layer, nn.Module):
                return layer
        for module in self.model.modules():
            if isinstance(module, nn.Embedding):
                return module
        raise LayerError("found no nn.Embedding in the model; pass embedding='<dotted name of the embedding layer>'")

    def embed(self, text: str | Encoding) -> torch.Tensor:
        """The embedding layer's output ``(1, T, D)`` for ``text`` (detached)."""
        enc = text if isinstance(text, Encoding) else self.encode(text)
        with torch.no_grad():
            return self.embedding_layer(enc.input_ids.to(self.device)).detach()

    def baseline_embeddings(self, text: str | Encoding, kind: str = "pad") -> torch.Tensor:
        """A baseline ``(1, T, D)`` for IG: every non-special token's embedding replaced by the ``pad``,
        ``mask`` or ``unk`` token's embedding, or by ``zeros``; special tokens keep theirs."""
        enc = text if isinstance(text, Encoding) else self.encode(text)
        emb = self.embed(enc)
        if kind == "zeros":
            base = torch.zeros_like(emb)
        elif kind in ("pad", "mask", "unk"):
            ids = torch.full_like(enc.input_ids, self._special_id(kind))
            with torch.no_grad():
                base = self.embedding_layer(ids.to(self.device)).detach()
        else:
            raise ParameterError(f"unknown baseline kind {kind!r}; choose 'pad', 'mask', 'unk' or 'zeros'")
        keep = enc.special.to(emb.device).view(1, -1, 1)
        return torch.where(keep, emb, base)

    def embedding_model(self, text: str | Encoding) -> EmbeddingForward:
        """A module mapping embeddings ``(N, T, D)`` of ``text``'s token positions to scores ``(N, C)``."""
        enc = text if isinstance(text, Encoding) else self.encode(text)
        return EmbeddingForward(self, enc)

    def token_values(
        self, values: torch.Tensor, text: str | Encoding | None = None, special: str = "zero"
    ) -> torch.Tensor:
        """Deprecated: ``xw.attribute(classifier, text, method)`` gives token (or word) values directly."""
        warnings.warn("TextClassifier.token_values is deprecated: xw.attribute(classifier, text, method, "
                      "level='token') returns the token values (the sum over the embedding dimension)",
                      DeprecationWarning, stacklevel=2)
        tokens = (values[:, 0] if values.dim() == 4 else values).sum(-1)
        if special == "keep":
            return tokens
        flags = (text if isinstance(text, Encoding) else self.encode(text)).special.to(tokens.device)
        return tokens.masked_fill(flags[None], 0.0) if special == "zero" else tokens[:, ~flags]

    @staticmethod
    def merge_words(encoding: Encoding, token_values: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """``(words, values (..., W))``: token values ``(..., T)`` summed over each word's pieces
        (special tokens left out)."""
        index = torch.tensor([-1 if w is None else w for w in encoding.word_ids], device=token_values.device)
        keep = index >= 0
        out = token_values.new_zeros(*token_values.shape[:-1], len(encoding.words))
        out.index_add_(-1, index[keep], token_values[..., keep])
        return list(encoding.words), out

    # ------------------------------------------------------------------------------------------------
    # coalitions (model-agnostic estimators)

    def features(self, text: str | Encoding, level: str = "token") -> list[str]:
        """Names of the features of ``text``: its non-special tokens, or its words."""
        enc = text if isinstance(text, Encoding) else self.encode(text)
        if level == "token":
            return [enc.tokens[i] for i in enc.positions.tolist()]
        if level == "word":
            return list(enc.words)
        raise ParameterError(f"level must be 'token' or 'word', got {level!r}")

    def feature_spans(self, text: str | Encoding, level: str = "token") -> list[tuple[int, int]] | None:
        """``(start, end)`` character offsets in the text of each of :meth:`features`, or None when the
        tokenizer gives no offsets."""
        enc = text if isinstance(text, Encoding) else self.encode(text)
        if level == "token":
            if enc.token_spans is None:
                return None
            return [enc.token_spans[i] for i in enc.positions.tolist()]  # type: ignore[misc]
        if level == "word":
            return None if enc.word_spans is None else list(enc.word_spans)
        raise ParameterError(f"level must be 'token' or 'word', got {level!r}")

    def feature_positions(self, enc: Encoding, level: str = "token") -> torch.Tensor:
        """``(M, T)`` bool: which token positions each feature covers."""
        t = len(enc)
        if level == "token":
            pos = enc.positions
            out = torch.zeros(len(pos), t, dtype=torch.bool)
            out[torch.arange(len(pos)), pos] = True
            return out
        if level == "word":
            out = torch.zeros(len(enc.words), t, dtype=torch.bool)
            for j, w in enumerate(enc.word_ids):
                if w is not None:
                    out[w, j] = True
            return out
        raise ParameterError(f"level must be 'token' or 'word', got {level!r}")

    def coalition_inputs(
        self, enc: Encoding, masks: torch.Tensor, *, level: str = "token", replace: str = "unk"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention masks ``(S, T)`` for coalitions ``masks`` ``(S, M)``: absent features are
        replaced by ``[UNK]``/``[MASK]``/padding token, or removed (``"remove"``: kept tokens shift left, the
        tail is padding with attention mask 0). Special tokens are always kept."""
        if replace not in REPLACEMENTS:
            raise ParameterError(f"replace must be one of {', '.join(REPLACEMENTS)}, got {replace!r}")
        device = self.device
        cover = self.feature_positions(enc, level).to(device)  # (M, T)
        z = torch.as_tensor(masks, device=device)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        if z.dim() != 2 or z.shape[1] != cover.shape[0]:
            raise ParameterError(
                f"masks must be (S, {cover.shape[0]}): one column per {level} of the text; got {tuple(z.shape)}"
            )
        z = z.bool()
        absent = (~z).to(torch.float32) @ cover.to(torch.float32) > 0  # (S, T)
        ids = enc.input_ids.to(device).expand(z.shape[0], -1)
        mask = enc.attention_mask.to(device).expand(z.shape[0], -1)
        if replace == "remove":
            keep = ~absent
            order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
            ids = torch.where(keep, ids, self.pad_id).gather(1, order)
            mask = (mask * keep).gather(1, order)
            return ids, mask
        fill = self._special_id(replace)
        ids = torch.where(absent, torch.full_like(ids, fill), ids)
        if replace == "pad":
            mask = mask * ~absent
        return ids, mask.clone()

    @torch.no_grad()
    def score_coalitions(
        self,
        text: str | Encoding,
        masks: Any,
        *,
        level: str = "token",
        replace: str = "unk",
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Scores ``(S, C)`` of ``text`` with the features outside each coalition replaced.

        ``masks`` is ``(S, M)`` bool/0-1 over :meth:`features` (``level="token"``: non-special tokens,
        ``"word"``: words); True keeps the token. ``replace`` is ``"unk"`` (default), ``"mask"``, ``"pad"``
        (padding id with attention mask 0) or ``"remove"``. Model calls are chunked by ``batch_size``.
        """
        enc = text if isinstance(text, Encoding) else self.encode(text)
        ids, mask = self.coalition_inputs(enc, masks, level=level, replace=replace)
        # "remove" keeps tokens on the left: a model that reads the attention mask loses nothing when the
        # all-padding tail columns of a chunk are dropped (about 10% of LIME's time on the demo model)
        trim = replace == "remove" and (self._with_mask or self._forward is not None)
        out = []
        for a in range(0, ids.shape[0], batch_size):
            i, m = ids[a : a + batch_size], mask[a : a + batch_size]
            if trim and m.numel():
                width = max(1, int(m.sum(1).max()))
                i, m = i[:, :width], m[:, :width]
            out.append(self(i, m))
        return torch.cat(out) if out else torch.zeros(0, 0, device=ids.device)

    def coalition_game(
        self, text: str | Encoding, target: int, **options: Any
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Deprecated: ``score_coalitions(text, z, ...)[:, target]`` is the game's value."""
        warnings.warn("TextClassifier.coalition_game is deprecated: use score_coalitions(text, z, level=..., "
                      "replace=...)[:, target]", DeprecationWarning, stacklevel=2)
        return lambda z: self.score_coalitions(text, z, **options)[:, int(target)]


class EmbeddingForward(nn.Module):
    """Scores ``(N, C)`` of one text as a function of its token embeddings ``(N, T, D)``.

    The embedding layer's output is replaced (by a forward hook, removed after each call) with the given
    embeddings, so position and segment embeddings, the attention mask and the rest of the model run as
    usual. A ``(N, 1, T, D)`` input (as the generic batching makes of a single ``(1, T, D)``) is accepted.
    """

    def __init__(self, classifier: TextClassifier, encoding: Encoding) -> None:
        super().__init__()
        if not isinstance(classifier.model, nn.Module):
            raise ModelError("gradient methods on text need an nn.Module model")
        self.net = classifier.model  # registered: state restoration covers the user's model
        self.classifier = classifier
        self.encoding = encoding

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.dim() == 4 and embeddings.shape[1] == 1:
            embeddings = embeddings[:, 0]
        t = self.encoding.input_ids.shape[1]
        if embeddings.dim() != 3 or embeddings.shape[1] != t:
            raise InputError(
                f"expected embeddings (N, {t}, D) of this text's {t} tokens; got shape {tuple(embeddings.shape)}"
            )
        n = embeddings.shape[0]
        device = embeddings.device
        ids = self.encoding.input_ids.to(device).expand(n, -1)
        mask = self.encoding.attention_mask.to(device).expand(n, -1)
        layer = self.classifier.embedding_layer

        def replace(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
            return embeddings.to(output.dtype)

        handle = layer.register_forward_hook(replace)
        try:
            return self.classifier(ids, mask)
        finally:
            handle.remove()
