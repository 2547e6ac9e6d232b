"""Layer lookup by dotted name, and the automatic choice of the map a CAM explains (by behaviour)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .attention import AttentionRecorder, attention_modules, module_stack, no_fused_paths
from .errors import LayerError
from .grid import grid_of, to_grid
from .state import Hooks, preserved


def get_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule named ``layer`` (dotted path, e.g. ``"layer4.1.conv2"``) or ``layer`` itself.

    Unknown names raise :class:`LayerError` listing the closest existing names.
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise LayerError("the layer module passed is not part of this model; pass one of its submodules")
        return layer
    if not isinstance(layer, str):
        raise LayerError(f"layer must be a dotted module name or a module, got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer in modules:
        return modules[layer]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    top = ", ".join(n for n, _ in model.named_children())
    raise LayerError(f"the model has no layer named {layer!r}.{hint} Top-level layers: {top}.")


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """The dotted name of ``layer`` inside ``model``."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise LayerError("layer is not part of the model")


@dataclass
class Pass:
    """One recorded forward: each module call in finishing order ``(name, first input, output)``, call
    counts, the modules that computed attention, and the model's output."""

    finished: list[tuple[str, object, object]]
    calls: dict[str, int]
    attention: set[str]
    output: object = None
    nodes: list = field(default_factory=list)
    batch: int = 1
    inplace: set[str] = field(default_factory=set)  # modules returning their input changed in place (ReLU_)

    def passes_on(self, name: str, inp: object, out: object) -> bool:
        """Whether the module returned its input object untouched (``nn.Identity``)."""
        return out is inp and name not in self.inplace  # per call: its output's autograd node when it was returned


def _record_calls(model: nn.Module, run_forward: Callable[[], object], *, grad: bool = False,
                  then: Callable[[Pass], Any] | None = None, batch: int = 1) -> Any:
    """Record one forward (see :class:`Pass`); with ``grad``, under ``torch.enable_grad`` with every
    activation in the graph (module outputs that need no gradient, a frozen model's, are made to, as
    fresh tensors of ours: no parameter's ``requires_grad`` is touched).

    Runs under the model's lock (:func:`~.state.preserved`): no other computation's hooks or in-place
    changes can disturb the pass that the layer choice is read from. ``then(pass)``, when given, runs inside
    the same block (before the model's state is restored: a backward through a pass in training mode needs
    the batch-norm buffers as the forward left them) and its result is returned instead of the pass.
    """
    finished: list[tuple[str, object, object]] = []
    nodes: list = []
    calls: dict[str, int] = {}
    stack: list[str] = []
    versions: dict[str, int] = {}
    inplace: set[str] = set()

    def make_pre(name: str):
        def pre(_module: nn.Module, args: tuple) -> None:
            if args and isinstance(args[0], torch.Tensor):
                versions[name] = args[0]._version

        return pre

    def make_hook(name: str):
        def hook(_module: nn.Module, args: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            first = args[0] if args else None
            if isinstance(output, torch.Tensor) and output is first and output._version != versions.get(name):
                inplace.add(name)
            if (grad and isinstance(output, torch.Tensor) and output.is_floating_point()
                    and not output.requires_grad and output.grad_fn is None and output is not first):
                output.requires_grad_(True)
            finished.append((name, first, output))
            nodes.append(output.grad_fn if isinstance(output, torch.Tensor) else None)

        return hook

    with preserved(model), Hooks() as hooks, no_fused_paths(), module_stack(model, stack):
        for name, module in model.named_modules():
            if name:
                hooks.add(module.register_forward_pre_hook(make_pre(name)))
                hooks.add(module.register_forward_hook(make_hook(name)))
        recorder = AttentionRecorder(stack)
        with torch.set_grad_enabled(grad), recorder:
            output = run_forward()
        rec = Pass(finished, calls, attention_modules(recorder.records), output, nodes, batch, inplace)
        return then(rec) if then is not None else rec


def _grid_cells(t: object, input_hw: tuple[int, int], batch: int) -> torch.Tensor | None:
    """``t`` as ``(N, C, h, w)`` when it is a map on the input grid (:func:`~.grid.grid_of`), else None."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        return None
    if grid_of(tuple(t.shape), input_hw, batch) is None:
        return None
    return to_grid(t, input_hw)


def _grows(before: torch.Tensor | None, after: torch.Tensor) -> bool:
    """Whether a module's output grid has more cells than its input's (padding, upsampling, resampling to a
    fixed size): a step for the next layer, not a feature map of its own."""
    return before is not None and before.shape[-2] * before.shape[-1] < after.shape[-2] * after.shape[-1]


def _inside(name: str, modules: set[str]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


@dataclass
class FeatureMap:
    """The default layer of a CAM: ``name`` (its output, or with ``use_input`` its first input) and why."""

    name: str
    use_input: bool
    reason: str

    @property
    def label(self) -> str:
        return f"input of {self.name}" if self.use_input else self.name


def _reaches_output(rec: Pass, tensors: list[torch.Tensor], input_hw: tuple[int, int]) -> list[bool | None]:
    """Per tensor: whether the output depends on its grid cells (a gradient of a random projection of the
    output that is not all zero there); None for all when the pass has no graph to tell."""
    from .targets import scores_from_output

    try:
        out = scores_from_output(rec.output, rec.batch) if rec.output is not None else None
    except Exception:  # an output that is not scores: no path test
        out = None
    live = [i for i, t in enumerate(tensors) if t.requires_grad]
    if out is None or not out.requires_grad or not live:
        return [None] * len(tensors)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out.device, out.dtype)
    grads = torch.autograd.grad((out * probe).sum(), [tensors[i] for i in live], allow_unused=True)
    result: list[bool | None] = [False] * len(tensors)
    for i, g in zip(live, grads):
        result[i] = g is not None and bool(to_grid(g, input_hw).ne(0).any())
    return result


def _trunk_nodes(rec: Pass) -> set | None:
    """The autograd nodes every path from the input to the output passes through (the trunk: block and
    stage outputs; a residual block's inner layers are bypassed by its skip path), or None without a graph.

    Nodes on some input-to-output path are put in topological order (output first); a node is on the trunk
    when no edge between two such nodes jumps over it.
    """
    from .targets import scores_from_output

    try:
        out = scores_from_output(rec.output, rec.batch)
    except Exception:  # an output that is not scores
        return None
    if out.grad_fn is None:
        return None
    children: dict = {}
    order: list = []  # post-order (children before parents), iterative
    todo: list = [(out.grad_fn, False)]
    while todo:
        node, done = todo.pop()
        if done:
            order.append(node)
            continue
        if node in children:
            continue
        children[node] = [c for c, _ in node.next_functions if c is not None]
        todo.append((node, True))
        todo.extend((c, False) for c in children[node] if c not in children)
    # sources: leaves that are no parameter (the input, or activations made to require a gradient)
    reaches: dict = {}
    for node in order:  # children first
        source = not children[node] and not isinstance(getattr(node, "variable", None), (nn.Parameter, type(None)))
        reaches[node] = source or any(reaches.get(c, False) for c in children[node])
    relevant = [n for n in reversed(order) if reaches[n]]  # parents before children: output first
    pos = {n: i for i, n in enumerate(relevant)}
    cover = [0] * (len(relevant) + 1)
    for n in relevant:
        for c in children[n]:
            if c in pos and pos[c] > pos[n] + 1:
                cover[pos[n] + 1] += 1
                cover[pos[c]] -= 1
    trunk, running = set(), 0
    for i, n in enumerate(relevant):
        running += cover[i]
        if running == 0:
            trunk.add(n)
    return trunk


@dataclass
class MapLayer:
    """A module whose output is a map on the input grid, outside attention (see :func:`map_layers`)."""

    name: str
    shape: tuple[int, ...]
    grid: tuple[int, int]
    block: bool  # on the trunk: every path from input to output passes through it (block/stage outputs)
    outermost: str  # the last module to return this very tensor (``layer4`` for ``layer4.1``'s output)


def map_layers(model: nn.Module, run_forward: Callable[[], object], input_hw: tuple[int, int],
               batch: int = 1) -> list[MapLayer]:
    """The layers a CAM can explain, in finishing order: modules run once per forward whose output is a
    map on the input grid (:func:`~.grid.grid_of`), neither an attention module nor inside one, not handing
    on their input object unchanged (``nn.Identity``) or growing its grid (padding, upsampling), and whose
    grid cells the output depends on; ``block`` marks those on the trunk (:func:`_trunk_nodes`)."""
    return _record_calls(model, run_forward, grad=True, then=lambda rec: _map_layers(rec, input_hw, batch),
                         batch=batch)


def _map_layers(rec: Pass, input_hw: tuple[int, int], batch: int) -> list[MapLayer]:
    found = [(i, cells) for i, (name, inp, out) in enumerate(rec.finished)
             if rec.calls.get(name) == 1 and not _inside(name, rec.attention) and not rec.passes_on(name, inp, out)
             and (cells := _grid_cells(out, input_hw, batch)) is not None
             and not _grows(_grid_cells(inp, input_hw, batch), cells)]
    reach = _reaches_output(rec, [rec.finished[i][2] for i, _c in found], input_hw)  # type: ignore[misc]
    trunk = _trunk_nodes(rec)
    last_name = {id(out): name for name, inp, out in rec.finished
                 if not rec.passes_on(name, inp, out)}  # pass-throughs name nothing
    return [MapLayer(rec.finished[i][0], tuple(rec.finished[i][2].shape),  # type: ignore[union-attr]
                     (int(cells.shape[-2]), int(cells.shape[-1])),
                     trunk is not None and rec.nodes[i] in trunk, last_name[id(rec.finished[i][2])])
            for (i, cells), ok in zip(found, reach) if ok is not False]


def choose_feature_map(model: nn.Module, run_forward: Callable[[], object], input_hw: tuple[int, int],
                       batch: int = 1, *, inputs_too: bool = True) -> FeatureMap:
    """The map a CAM should explain by default, chosen by behaviour (no class names):

    the output of the last module (in finishing order) that runs once per forward, whose output is a map
    on the input grid (``(N, C, h, w)``, ``(N, h, w, C)`` or tokens whose last ``h * w`` form the grid:
    :func:`~.grid.grid_of`; an attention tensor such as ``(N, heads, tokens, head_dim)`` is not), that is
    neither an attention module nor inside one (modules that compute attention are seen doing it:
    :mod:`.attention`), that does not upsample or copy its input's map (VGG's adaptive pooling 2x2 -> 7x7, an
    ``nn.Identity``), and whose grid cells the output depends on (a ViT's last blocks and final norm are
    skipped when the class token alone is read out: their patch tokens reach no score).

    With ``inputs_too``, when the next module that receives a map of the same shape receives a different
    tensor (an activation applied by a shared module or a function in between: EfficientNet's ``ReLU6``),
    its input is explained instead (e.g. "input of _avg_pooling").
    """
    return _record_calls(model, run_forward, grad=True,
                         then=lambda rec: _choose(rec, input_hw, batch, inputs_too=inputs_too), batch=batch)


def _choose(rec: Pass, input_hw: tuple[int, int], batch: int, *, inputs_too: bool) -> FeatureMap:
    cand: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (index in finished, raw tensor, grid)
    skipped: dict[str, list[str]] = {"attention": [], "output": []}
    for i, (name, inp, out) in enumerate(rec.finished):
        if rec.calls.get(name) != 1:
            continue
        cells = _grid_cells(out, input_hw, batch)
        if cells is None:
            continue
        if _inside(name, rec.attention):
            skipped["attention"].append(name)
            continue
        before = _grid_cells(inp, input_hw, batch)
        if before is not None and (_grows(before, cells) or (name not in rec.inplace and (
                inp is out or (before.shape == cells.shape and torch.equal(before, cells))))):
            continue  # upsamples, or hands its input on unchanged: the earlier module names the map
        cand.append((i, out, cells))  # type: ignore[arg-type]
    if not cand:
        raise LayerError(
            "found no layer whose output is a map on the input grid ((N, C, h, w), (N, h, w, C) or tokens "
            "forming an h x w grid, outside attention); pass layer='<dotted name>' (and reshape=... for tokens)"
        )
    reach = _reaches_output(rec, [t for _i, t, _c in cand], input_hw)
    chosen = None
    for (i, t, cells), ok in zip(reversed(cand), reversed(reach)):
        if ok is False:
            skipped["output"].append(rec.finished[i][0])
            continue
        chosen = (i, t, cells)
        break
    if chosen is None:
        raise LayerError("the model's output depends on none of its spatial maps; pass layer='<dotted name>'")
    index, out, cells = chosen
    name = rec.finished[index][0]
    use_input = False
    if inputs_too:
        for later, inp, _out in rec.finished[index + 1:]:
            if _grid_cells(inp, input_hw, batch) is None or rec.calls.get(later) != 1:
                continue  # shared modules (a reused activation) are no place to hook
            if inp is out or inp.shape != out.shape or _inside(later, rec.attention):
                break
            name, use_input, out = later, True, inp
            break
    return FeatureMap(name, use_input, _reason(out, cells, input_hw, skipped, use_input))


def _reason(out: torch.Tensor, cells: torch.Tensor, input_hw: tuple[int, int], skipped: dict[str, list[str]],
            use_input: bool) -> str:
    layout = grid_of(tuple(out.shape), input_hw)
    h, w = int(cells.shape[-2]), int(cells.shape[-1])
    kind = {"channels_first": "(N, C, h, w) map", "channels_last": "(N, h, w, C) map"}.get(
        layout or "", "token sequence")
    extra = ""
    if layout == "tokens":
        n_extra = int(out.shape[1]) - h * w
        extra = f" + {n_extra} extra token{'s' if n_extra != 1 else ''}" if n_extra else ""
    text = (f"automatic: the last {kind} on the input grid ({h}x{w}{extra}, stride ~{input_hw[0] / h:.3g}) "
            "that the output depends on, outside attention")
    if use_input:
        text += "; taken at the next module's input, after the activation applied between"
    notes = []
    if skipped["output"]:
        notes.append(f"later maps whose cells do not reach the output: {_few(skipped['output'][::-1])}")
    if skipped["attention"]:
        notes.append(f"attention internals: {_few(skipped['attention'])}")
    return text + (" (skipped " + "; ".join(notes) + ")" if notes else "")


def _few(names: list[str], k: int = 3) -> str:
    """The last ``k`` of ``names`` (finishing order), latest first."""
    shown = ", ".join(names[-k:][::-1])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def find_last_spatial_layer(model: nn.Module, run_forward: Callable[[], object]) -> str:
    """The name of the last module (in execution order) whose output is a map on the input grid that the
    output depends on, outside attention: :func:`choose_feature_map` without moving to a later module's
    input. The input grid and batch size are those of the image batch the model receives."""
    hw, batch = _input_geometry(model, run_forward)
    return choose_feature_map(model, run_forward, hw, batch, inputs_too=False).name


def find_feature_map(model: nn.Module, run_forward: Callable[[], object]) -> tuple[str, bool]:
    """``(module name, use_input)`` of :func:`choose_feature_map` (what a CAM explains by default)."""
    hw, batch = _input_geometry(model, run_forward)
    found = choose_feature_map(model, run_forward, hw, batch)
    return found.name, found.use_input


def _input_geometry(model: nn.Module, run_forward: Callable[[], object]) -> tuple[tuple[int, int], int]:
    """``((H, W), N)`` of the image batch the model receives in ``run_forward``."""
    seen: list[tuple[tuple[int, int], int]] = []

    def pre(_m: nn.Module, args: tuple) -> None:
        if not seen and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            seen.append(((int(args[0].shape[-2]), int(args[0].shape[-1])), int(args[0].shape[0])))

    with preserved(model), Hooks() as hooks, torch.no_grad():
        hooks.add(model.register_forward_pre_hook(pre))
        run_forward()
    if not seen:
        raise LayerError("the model does not take an image batch (N, C, H, W); pass layer= explicitly")
    return seen[0]
