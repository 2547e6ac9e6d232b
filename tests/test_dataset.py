"""explain_dataset, its zarr store (resume, kill safety, identity checks), DatasetExplanations and errors.

Oracle for the records: ``xw.attribute`` on the same batch (maps area-averaged by
``F.adaptive_avg_pool2d``, the definition of the store's downsampling) and the model's own softmax.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, InputError, LayerError, TargetError
from xaiwidgets.dataset import StoreError, StoreWriteError
from xaiwidgets.dataset import compute as dataset_compute
from xaiwidgets.dataset.store import Store

pytest.importorskip("zarr")

ROOT = Path(__file__).resolve().parents[1]


def tiny_cnn(seed: int = 0, n_classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, n_classes)).eval()


def data(n: int = 20, size: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.randint(3, (n,), generator=g)


def arrays(r: xw.DatasetExplanations) -> dict[str, np.ndarray]:
    out = {k: getattr(r, k) for k in ("topk", "probabilities", "labels", "correct", "loss", "embeddings")}
    out.update({f"maps/{m}": np.asarray(r.maps(m)) for m in r.methods})
    return out


def assert_same(a: xw.DatasetExplanations, b: xw.DatasetExplanations) -> None:
    assert len(a) == len(b)
    for (k, x), y in zip(arrays(a).items(), arrays(b).values()):
        np.testing.assert_array_equal(x, y, err_msg=k)


def test_records_match_attribute_and_model():
    model, (x, y) = tiny_cnn(), data(20)
    r = xw.explain_dataset(model, x, methods=("gradcam", "saliency"), labels=y, batch_size=8, map_size=4,
                           keep_full=True, progress=False, top_k=2)
    assert len(r) == 20 and r.complete
    with torch.no_grad():
        logits = model(x)
    probs = logits.softmax(1)
    np.testing.assert_array_equal(r.predictions, logits.argmax(1).numpy())
    np.testing.assert_allclose(r.probabilities[:, 0], probs.max(1).values.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(r.labels, y.numpy())
    np.testing.assert_array_equal(r.correct, (logits.argmax(1) == y).numpy())
    np.testing.assert_allclose(r.loss, F.cross_entropy(logits, y, reduction="none").numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r.embeddings, F.relu(model[0](x)).mean((2, 3)).detach().numpy(), rtol=1e-5,
                               atol=1e-7)
    for method in ("gradcam", "saliency"):
        ref = torch.cat([torch.from_numpy(xw.attribute(model, x[s:s + 8], method, progress=False).heatmap())
                         for s in range(0, 20, 8)])
        np.testing.assert_array_equal(np.asarray(r.maps(method, full=True)), ref.numpy())
        down = F.adaptive_avg_pool2d(ref.unsqueeze(1), 4)[:, 0]
        peak = down.abs().flatten(1).amax(1).view(-1, 1, 1)
        # stored as float16 relative to each map's max |value|: error <= 2^-11 of that max
        np.testing.assert_allclose(np.asarray(r.maps(method)), down.numpy(), rtol=0,
                                   atol=float(peak.max()) * 2**-11)
        assert (np.abs(np.asarray(r.maps(method)) - down.numpy()) <= peak.numpy() * 2**-11 + 1e-30).all()
        assert r.maps(method).dtype == np.float32 and r._store.group[f"maps/{method}"].dtype == np.float16


def test_store_roundtrip_select_item_and_reopen(tmp_path):
    model, (x, y) = tiny_cnn(), data(20)
    store = tmp_path / "run"
    r = xw.explain_dataset(model, list(zip(x, y)), store=store, batch_size=6, map_size=4, progress=False)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["completed"] == [0, 1, 2, 3] and manifest["n"] == 20 and manifest["chunk_size"] == 6
    assert manifest["model"]["class"].endswith("Sequential") and manifest["library_version"] == xw.__version__
    assert (store / "zarr.json").is_file()
    again = xw.open_explanations(store)
    assert_same(r, again)
    sub = again.select(again.labels == 1)
    np.testing.assert_array_equal(sub.indices, np.flatnonzero(y.numpy() == 1))
    np.testing.assert_array_equal(np.asarray(sub.maps("gradcam")), np.asarray(r.maps("gradcam"))[y.numpy() == 1])
    assert len(r.select([3, 1])) == 2 and r.select([3, 1]).indices.tolist() == [3, 1]
    item = r.item(5)
    assert torch.equal(item["input"], x[5]) and item["label"] == int(y[5])
    np.testing.assert_array_equal(item["maps"]["gradcam"], np.asarray(r.maps("gradcam"))[5])
    assert "input" not in again.item(5)
    # rerun on the complete store: nothing recomputed, same records
    assert_same(r, xw.explain_dataset(model, list(zip(x, y)), store=store, batch_size=6, map_size=4, progress=False))


def test_store_identity_and_paths(tmp_path):
    model, (x, _) = tiny_cnn(), data(6)
    store = tmp_path / "run"
    xw.explain_dataset(model, x, store=store, batch_size=4, map_size=4, progress=False)
    with pytest.raises(StoreError, match="model"):
        xw.explain_dataset(tiny_cnn(seed=5), x, store=store, batch_size=4, map_size=4, progress=False)
    with pytest.raises(StoreError, match="methods"):
        xw.explain_dataset(model, x, methods=("saliency",), store=store, batch_size=4, map_size=4, progress=False)
    with pytest.raises(StoreError, match="params"):
        xw.explain_dataset(model, x, store=store, batch_size=4, map_size=4, progress=False, gradcam={"layer": "0"})
    with pytest.raises(StoreError, match="map_size"):
        xw.explain_dataset(model, x, store=store, batch_size=4, map_size=2, progress=False)
    assert json.loads((store / "manifest.json").read_text())["methods"] == ["gradcam"]  # untouched
    r = xw.explain_dataset(model, x, methods=("saliency",), store=store, batch_size=4, map_size=4, progress=False,
                           overwrite=True)
    assert r.methods == ["saliency"] and len(xw.open_explanations(store)) == 6
    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        xw.explain_dataset(model, x, store=a_file, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not a dataset store"):
        xw.explain_dataset(model, x, store=foreign, progress=False)
    with pytest.raises(StoreError, match="not a dataset store"):
        xw.explain_dataset(model, x, store=foreign, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


_KILL_SCRIPT = """
import json, os, signal, sys, torch
from torch import nn
import xaiwidgets as xw
from xaiwidgets.dataset.store import Store

mode, store, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 3)).eval()
g = torch.Generator().manual_seed(1)
x = torch.rand(40, 3, 8, 8, generator=g)
y = torch.randint(3, (40,), generator=g)
if mode == "kill_in_write":  # SIGKILL after the first array of chunk 2 is written, before the manifest
    original = Store.write_chunk
    def write_chunk(self, start, records):
        if start == 16:
            name, values = next(iter(records.items()))
            self.group[name][start:start + len(values)] = values
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, start, records)
    Store.write_chunk = write_chunk
if mode == "kill_in_compute":  # SIGKILL inside the model's forward during chunk 2 (two forwards per chunk)
    calls = [0]
    def hook(module, args):
        if args[0].shape[0] == 8:
            calls[0] += 1
            if calls[0] == 5:
                os.kill(os.getpid(), signal.SIGKILL)
    model[0].register_forward_pre_hook(hook)
xw.explain_dataset(model, x, labels=y, store=store, batch_size=8, map_size=4, progress=False, **kwargs)
"""

_DETERMINISTIC = {"methods": ["gradcam", "saliency"]}
# random methods with a seed: each chunk's seed derives from (seed, first item), not from earlier chunks' draws
# (seed=None: one drawn per store and kept in the manifest, so the resumed chunks continue with it; the
# uninterrupted run is given that seed)
_RANDOM = {"methods": ["smoothgrad", "rise"], "smoothgrad": {"n_samples": 3, "seed": None},
           "rise": {"n_masks": 12, "cell_size": 4, "seed": 3}}


@pytest.mark.parametrize(("phase", "kwargs"), [("kill_in_write", _DETERMINISTIC), ("kill_in_compute", _DETERMINISTIC),
                                               ("kill_in_write", _RANDOM)], ids=["write", "compute", "random"])
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, phase, kwargs):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILL_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(mode: str, store: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), mode, str(store), json.dumps(kwargs)], env=env,
                              capture_output=True, text=True, timeout=300)

    killed = run(phase, tmp_path / "killed")
    assert killed.returncode == -9, killed.stderr
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert 0 < len(manifest["completed"]) < 5 and 2 not in manifest["completed"]
    partial = xw.open_explanations(tmp_path / "killed")
    assert not partial.complete and len(partial) == 8 * len(manifest["completed"])
    # resume here: the script's model (torch's Sequential, seed 0) and data are tiny_cnn() and data(40)
    model, (x, y) = tiny_cnn(), data(40)
    kwargs = dict(kwargs, labels=y, batch_size=8, map_size=4, progress=False)
    resumed = xw.explain_dataset(model, x, store=tmp_path / "killed", **kwargs)
    for method, seed in manifest.get("drawn_seeds", {}).items():  # seed=None: the killed run's drawn seed
        kwargs[method] = {**kwargs[method], "seed": seed}
    plain = xw.explain_dataset(model, x, store=tmp_path / "plain", **kwargs)
    assert resumed.complete and len(resumed) == 40
    assert_same(xw.open_explanations(tmp_path / "killed"), plain)


def test_cancel_keeps_completed_chunks_and_resume_finishes(tmp_path):
    model, (x, _) = tiny_cnn(), data(24)
    cancel = threading.Event()
    events = []

    def on_event(kind, payload):
        events.append((kind, payload))
        if payload["done"] >= 8:
            cancel.set()

    with pytest.raises(Cancelled):
        xw.explain_dataset(model, x, store=tmp_path / "s", batch_size=8, map_size=4, progress=False,
                           cancel_event=cancel, on_event=on_event)
    assert events[0] == ("chunk", {"chunk": 0, "start": 0, "stop": 8, "done": 8, "total": 24})
    assert len(xw.open_explanations(tmp_path / "s")) == 8
    full = xw.explain_dataset(model, x, store=tmp_path / "s", batch_size=8, map_size=4, progress=False)
    assert_same(full, xw.explain_dataset(model, x, batch_size=8, map_size=4, progress=False))


def test_image_folder_with_classifier_and_unreadable_files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, sizes in (("a", (10, 12)), ("b", (9, 16))):
        (tmp_path / cls).mkdir()
        for j, s in enumerate(sizes):
            Image.fromarray(rng.integers(0, 255, (s, s + 1, 3), dtype=np.uint8)).save(tmp_path / cls / f"{j}.png")
    clf = xw.ImageClassifier(tiny_cnn(n_classes=2), labels=["a", "b"], input_size=8)
    r = xw.explain_dataset(clf, tmp_path, batch_size=3, map_size=4, progress=False)
    assert len(r) == 4 and r.labels.tolist() == [0, 0, 1, 1]
    assert torch.allclose(r.item(1)["input"], clf.preprocess(Image.open(tmp_path / "a" / "1.png"))[0])
    # mixed sizes without a preprocessing rule: name the first mismatching index
    with pytest.raises(InputError, match="item 1 has shape"):
        xw.explain_dataset(tiny_cnn(), str(tmp_path), batch_size=3, map_size=4, progress=False)
    bad = tmp_path / "b" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"broken\.png"):
        xw.explain_dataset(clf, tmp_path, batch_size=3, map_size=4, progress=False)
    r = xw.explain_dataset(clf, tmp_path, batch_size=3, map_size=4, progress=False, on_error="skip",
                           store=tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert list(manifest["skipped"]) == ["4"] and "broken.png" in manifest["skipped"]["4"]
    assert len(r) == 4 and r.indices.tolist() == [0, 1, 2, 3]


def test_bad_input_errors():
    model, (x, _) = tiny_cnn(), data(6)
    with pytest.raises(TargetError, match="item 0 has label 7"):
        xw.explain_dataset(model, x, labels=[7, 0, 0, 0, 0, 0], progress=False)
    with pytest.raises(TargetError, match="item 4 has label -3"):  # -1 means "no label"; other negatives do not
        xw.explain_dataset(model, x, labels=[0, 1, -1, 2, -3, 0], progress=False)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 3)).eval()
    with pytest.raises(LayerError, match="gradcam"):
        xw.explain_dataset(mlp, x, methods=("gradcam",), progress=False)
    with pytest.raises(InputError, match="item 2 has shape"):
        xw.explain_dataset(model, [x[0], x[1], x[2, :, :4]], progress=False)
    with pytest.raises(InputError, match="tensor"):
        xw.explain_dataset(model, x[0], progress=False)
    # maps far below (or above) float16's range keep their relative precision (per-map scale)
    scaled = nn.Sequential(model, nn.Linear(3, 3)).eval()
    with torch.no_grad():
        scaled[1].weight.copy_(torch.eye(3) * 1e-9)
        scaled[1].bias.zero_()
    r = xw.explain_dataset(scaled, x, methods=("saliency",), map_size=4, progress=False)
    ref = F.adaptive_avg_pool2d(torch.from_numpy(xw.attribute(scaled, x, "saliency", progress=False).heatmap())
                                .unsqueeze(1), 4)[:, 0].numpy()
    assert ref.max() < 1e-8
    np.testing.assert_allclose(np.asarray(r.maps("saliency")), ref, rtol=2**-10, atol=0)


def test_dataloader_and_dataset_inputs():
    model, (x, y) = tiny_cnn(), data(10)
    ds = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True)
    a = xw.explain_dataset(model, loader, map_size=4, progress=False)
    b = xw.explain_dataset(model, ds, batch_size=4, map_size=4, progress=False)
    assert a.manifest["chunk_size"] == 4
    assert_same(a, b)
    np.testing.assert_array_equal(a.labels, y.numpy())


def test_ten_thousand_items_in_memory_stay_small():
    """10,000 items through a tiny model at map_size=64 (the issue's setting): peak RSS grows < 200 MB (the
    maps are 78 MB of float16 before compression; zarr keeps them compressed by chunk)."""
    import resource

    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(2, 3)).eval()
    x = torch.rand(10_000, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = xw.explain_dataset(model, x, methods=("saliency",), batch_size=1000, map_size=64, progress=False)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(r) == 10_000 and r.maps("saliency").shape == (10_000, 64, 64)
    assert grown_mb < 200, grown_mb


def _count_forwards(model: nn.Module, n: int) -> list[int]:
    """A counter of the model's forwards on batches of ``n`` items (a pre-hook; remove with the model)."""
    calls = [0]
    model.register_forward_pre_hook(lambda _m, args: calls.__setitem__(0, calls[0] + (args[0].shape[0] == n)))
    return calls


@pytest.mark.parametrize("method", sorted(dataset_compute.PLAIN_FORWARD))
def test_records_from_the_methods_forward_are_bitwise_the_plain_forwards(method, monkeypatch):
    """The records (scores, top-k, loss, embedding) of a method in PLAIN_FORWARD come from its own forward;
    they and the maps equal, bit for bit, a run that takes them from a separate no-grad forward (and
    explains topk's class), and that forward is indeed saved."""
    (x, y) = data(12)
    kwargs = dict(methods=(method,), labels=y, batch_size=6, map_size=4, keep_full=True, progress=False,
                  smoothgrad={"n_samples": 2}, smoothgrad_squared={"n_samples": 2}, vargrad={"n_samples": 2})
    kwargs = {k: v for k, v in kwargs.items() if k not in dataset_compute.PLAIN_FORWARD or k == method}
    folded_model = tiny_cnn()
    folded_calls = _count_forwards(folded_model, 6)
    folded = xw.explain_dataset(folded_model, x, **kwargs)
    monkeypatch.setattr(dataset_compute, "PLAIN_FORWARD", frozenset())
    plain_model = tiny_cnn()
    plain_calls = _count_forwards(plain_model, 6)
    plain = xw.explain_dataset(plain_model, x, **kwargs)
    assert_same(folded, plain)
    np.testing.assert_array_equal(np.asarray(folded.maps(method, full=True)), np.asarray(plain.maps(method, full=True)))
    assert folded_calls[0] == plain_calls[0] - 2  # one forward fewer per chunk


def test_tied_scores_explain_the_recorded_prediction():
    """Classes 0 and 1 have equal scores for every input: the map is of the recorded top-1 class."""
    model = tiny_cnn()
    with torch.no_grad():
        model[-1].weight[1] = model[-1].weight[0]
        model[-1].bias[1] = model[-1].bias[0]
    (x, _) = data(8)
    r = xw.explain_dataset(model, x, methods=("saliency",), batch_size=4, map_size=8, keep_full=True, progress=False)
    ref = xw.attribute(model, x, "saliency", target=torch.from_numpy(r.predictions).long(), progress=False)
    np.testing.assert_array_equal(np.asarray(r.maps("saliency", full=True)), ref.heatmap())


def test_full_disk_mid_run_keeps_complete_chunks_and_resumes(tmp_path, monkeypatch):
    """ENOSPC while writing chunk 2 (its ``valid`` chunk file left truncated, never read): a
    StoreWriteError naming the store and the disk; the store opens with chunks 0 and 1; a rerun after space
    is freed gives the store of an uninterrupted run."""
    model, (x, y) = tiny_cnn(), data(32)
    kwargs = dict(methods=("gradcam", "saliency"), labels=y, batch_size=8, map_size=4, progress=False)
    store = tmp_path / "full"
    original = Store.write_chunk

    def write_chunk(self, start, records):
        if start == 16:
            name, values = next(iter(records.items()))
            self.group[name][start:start + len(values)] = values
            half = store / name / "c" / "2"
            assert name == "valid" and half.is_file()
            half.write_bytes(half.read_bytes()[:3])  # a half-written chunk file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, start, records)

    monkeypatch.setattr(Store, "write_chunk", write_chunk)
    with pytest.raises(StoreWriteError, match="disk is full") as info:
        xw.explain_dataset(model, x, store=store, **kwargs)
    message = str(info.value)
    assert str(store) in message and "chunk 2 (items 16-23)" in message and "2 complete chunks" in message
    assert " on /" in message and "MB free" in message and info.value.errno == errno.ENOSPC
    partial = xw.open_explanations(store)
    assert partial.manifest["completed"] == [0, 1] and partial.indices.tolist() == list(range(16))
    assert np.asarray(partial.maps("saliency")).shape == (16, 4, 4) and len(partial.predictions) == 16
    monkeypatch.setattr(Store, "write_chunk", original)  # space freed
    resumed = xw.explain_dataset(model, x, store=store, **kwargs)
    assert resumed.complete
    assert_same(xw.open_explanations(store), xw.explain_dataset(model, x, store=tmp_path / "plain", **kwargs))
    assert not list(store.glob(".manifest.json.tmp"))


def test_full_disk_while_writing_the_manifest(tmp_path, monkeypatch):
    """ENOSPC on the manifest's temporary file: the old manifest stays, the temporary file is removed."""
    model, (x, _) = tiny_cnn(), data(16)
    store = tmp_path / "s"
    original = Store.mark_complete

    def mark_complete(self, chunk, skipped):
        if chunk == 1:
            monkeypatch.setattr(json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
        original(self, chunk, skipped)

    monkeypatch.setattr(Store, "mark_complete", mark_complete)
    with pytest.raises(StoreWriteError, match="disk is full"):
        xw.explain_dataset(model, x, store=store, batch_size=8, map_size=4, progress=False)
    monkeypatch.undo()
    assert json.loads((store / "manifest.json").read_text())["completed"] == [0]
    assert not (store / ".manifest.json.tmp").exists() and len(xw.open_explanations(store)) == 8


def test_random_methods_seed_each_chunk_from_the_seed_and_its_first_item():
    """Chunk c of a seeded random method equals ``xw.attribute`` on that chunk with seed
    ``chunk_seed(seed, start)``: independent of earlier chunks (resume, Ray) and different per chunk.
    ``seed=None``: one seed drawn per call (in memory) or per store, recorded in the manifest."""
    model, (x, _) = tiny_cnn(), data(12)
    kwargs = dict(methods=("smoothgrad",), batch_size=6, map_size=8, keep_full=True, progress=False)
    r = xw.explain_dataset(model, x, smoothgrad={"n_samples": 3, "seed": 5}, **kwargs)
    full = np.asarray(r.maps("smoothgrad", full=True))
    for start in (0, 6):
        target = torch.from_numpy(r.predictions[start:start + 6]).long()
        ref = xw.attribute(model, x[start:start + 6], "smoothgrad", target, n_samples=3, progress=False,
                           seed=dataset_compute.chunk_seed(5, start))
        np.testing.assert_array_equal(full[start:start + 6], ref.heatmap())
    assert dataset_compute.chunk_seed(5, 0) != dataset_compute.chunk_seed(5, 6)
    # the default seed (0) is a seed too: two runs agree
    assert_same(xw.explain_dataset(model, x, **kwargs), xw.explain_dataset(model, x, **kwargs))
    a = xw.explain_dataset(model, x, smoothgrad={"n_samples": 3, "seed": None}, **kwargs)
    b = xw.explain_dataset(model, x, smoothgrad={"n_samples": 3, "seed": None}, **kwargs)
    assert set(a.manifest["drawn_seeds"]) == {"smoothgrad"}
    assert a.manifest["drawn_seeds"] != b.manifest["drawn_seeds"]
    assert not np.array_equal(np.asarray(a.maps("smoothgrad", full=True)), np.asarray(b.maps("smoothgrad", full=True)))


def test_tqdm_bar_with_eta_headless(capsys):
    """progress=True in a script: a tqdm text bar on stderr with the elapsed<remaining time (shown once the
    run has taken over a second)."""
    import time

    model, (x, _) = tiny_cnn(), data(16)
    # one forward per chunk of 4 (saliency's forward gives the records too): 4 x 0.4 s, the bar shows at 1.2 s
    model.register_forward_pre_hook(lambda _m, args: time.sleep(0.4) if args[0].shape[0] == 4 else None)
    xw.explain_dataset(model, x, methods=("saliency",), batch_size=4, map_size=4, progress=True)
    err = capsys.readouterr().err
    assert "explain_dataset" in err and "/16 [" in err and "<" in err, err


@pytest.mark.slow
def test_ray_backend_store_equals_local(tmp_path, monkeypatch):
    """Ray Data actor pool on a local Ray (2 CPUs, 127.0.0.1, no dashboard): the same store, bitwise, as the
    local loop for the deterministic methods gradcam and saliency and for seeded smoothgrad (each chunk's seed
    derives from the seed and its first item; the actors use the driver's thread count)."""
    ray = pytest.importorskip("ray")
    model, (x, y) = tiny_cnn(), data(20)
    kwargs = dict(methods=("gradcam", "saliency", "smoothgrad"), labels=y, batch_size=6, map_size=4, progress=False,
                  smoothgrad={"n_samples": 3, "seed": 2})
    local = xw.explain_dataset(model, x, store=tmp_path / "local", **kwargs)
    # a loaded 2-core CI machine can take longer than Ray's default to start the raylet
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "300")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        remote = xw.explain_dataset(model, x, store=tmp_path / "ray", backend="ray", **kwargs)
    finally:
        ray.shutdown()
    assert sorted(remote.manifest["completed"]) == [0, 1, 2, 3]
    assert_same(local, remote)
    assert_same(local, xw.open_explanations(tmp_path / "ray"))
