"""Checks every registered loader, backbone, pretext task, fine-tuning task and baseline must
pass, one named property at a time (a failing test says which promise broke).

Properties per kind (:data:`PROPERTIES`):

- loader: ``builds`` (the example builds a non-empty dataset that keeps the dataset contract,
  :class:`~ssl_domains.contracts.ItemDataset`: ``skipped``, ``augment_item``, ``set_epoch``, ...
  in their documented form where present), ``item`` (a dict with one input
  tensor ``[C, *spatial]`` of a declared modality and dims, and ``meta``), ``labels`` (one per
  item, equal to the first and last items' labels), ``groups`` (one per item), ``batch`` (two
  items collate), ``reproducible`` (a second build gives the same first item).
- backbone: ``surface``, ``forward_shape``, ``gradients``, ``export_roundtrip``.
- pretext task: ``builds``, ``loss``, ``gradients``, ``figures``.
- fine-tuning task: ``builds``, ``loss``, ``gradients``, ``inference``.
- baseline: ``predict_proba``.

Loader examples name files. Relative paths are read from the working directory (the
repository root for the shipped examples: ``sample_data/``, ``../shared/data/``); an example
whose files are missing is skipped and the message names them. A loader whose example files
can be written on the spot declares a writer, ``@component(..., example_data="pkg.mod:func")``
(or the function itself): the kit calls ``func(folder)`` on an empty temporary folder and
builds the example there.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ssl_domains.component_checks import (
    dataset_problem,
    features_problem,
    item_problem,
    labels_problem,
    per_item_problem,
)
from ssl_domains.contracts import MODALITIES, Example, ItemDataset
from ssl_domains.data.collate import collate_items
from ssl_domains.errors import IncompatibleError, PluginError
from ssl_domains.plugins import get_host
from ssl_domains.registry import Entry

__all__ = ["Case", "PROPERTIES", "component_cases", "check_case", "missing_requirements"]

#: The named checks of each kind, in the order they run.
PROPERTIES: dict[str, tuple[str, ...]] = {
    "loader": ("builds", "item", "labels", "groups", "batch", "reproducible"),
    "backbone": ("surface", "forward_shape", "gradients", "export_roundtrip"),
    "pretext": ("builds", "loss", "gradients", "figures"),
    "finetune": ("builds", "loss", "gradients", "inference"),
    "baseline": ("predict_proba",),
}

#: Argument names whose values are files or folders (checked to exist before a loader builds).
_PATH_KEYS = ("path", "root", "data_root", "file", "files", "folder")


@dataclass(frozen=True)
class Case:
    """One check: a component (with one of its examples), paired with a backbone when needed,
    and the property to check (None: all of the kind's properties)."""

    entry: Entry
    example: Example
    backbone: Entry | None = None
    backbone_example: Example | None = None
    prop: str | None = None

    def __str__(self) -> str:
        s = f"{self.entry.kind}/{self.entry.name}{_index(self.entry, self.example)}"
        if self.backbone is not None and self.backbone_example is not None:
            s += f"+{self.backbone.name}{_index(self.backbone, self.backbone_example)}"
        return s if self.prop is None else f"{s}/{self.prop}"


def _index(entry: Entry, example: Example) -> str:
    """``[i]`` when the entry has several examples, else nothing."""
    if len(entry.examples) < 2:
        return ""
    return f"[{entry.examples.index(example) if example in entry.examples else 0}]"


def _backbone_examples(plugins: set[str]) -> list[tuple[Entry, Example]]:
    """Every example of every backbone registered by one of ``plugins``."""
    return [(e, ex) for e in get_host().registry.entries("backbone") if e.plugin in plugins
            for ex in e.examples]


def component_cases(plugin: str | None = None) -> list[Case]:
    """Every (component, example, property) of ``plugin`` (all plugins when None); tasks are
    paired with every backbone example of the same modality (from that plugin or the host)."""
    host = get_host()
    if plugin is not None and plugin not in host.plugins:
        raise PluginError(
            f"plugin {plugin!r} is not loaded (loaded: {', '.join(host.plugins)}; skipped: "
            f"{host.skipped or 'none'}); install it (pip install -e <plugin folder>) and run "
            "the tests from outside a folder of the same name"
        )
    reg = host.registry
    bases: list[Case] = []
    for e in reg.entries():
        if plugin is not None and e.plugin != plugin:
            continue
        if e.kind in ("backbone", "loader"):
            bases += [Case(e, ex) for ex in e.examples or (Example(),)]
        elif e.kind in ("pretext", "finetune"):
            for ex in e.examples or (Example(),):
                for be, bex in _backbone_examples({e.plugin}):
                    if e.modalities and be.modalities and not set(e.modalities) & set(be.modalities):
                        continue
                    bases.append(Case(e, ex, be, bex))
        elif e.kind == "baseline":
            bases.append(Case(e, e.examples[0] if e.examples else Example()))
    return [Case(c.entry, c.example, c.backbone, c.backbone_example, prop)
            for c in bases for prop in PROPERTIES.get(c.entry.kind, ())]


# ---------------------------------------------------------------------------------- the memo
#: What the last case built (the properties of one case run one after another): a task and its
#: forward pass, a loader's example folder and dataset. ``builds`` and ``reproducible`` build
#: afresh; ``gradients`` runs backward on the memo's forward pass once, afresh after that.
_MEMO: dict[str, Any] = {}


def _memo(case: Case) -> dict[str, Any]:
    key = ":".join(str(id(o)) for o in (case.entry, case.example, case.backbone, case.backbone_example))
    if _MEMO.get("key") != key:
        _MEMO.clear()
        _MEMO["key"] = key
    return _MEMO


# ---------------------------------------------------------------------------------- backbones
def _input(example: Example, batch: int = 2) -> torch.Tensor:
    if example.input_shape is None:
        raise AssertionError("backbone examples need input_shape")
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, *example.input_shape), generator=g)


def _build_backbone(entry: Entry, example: Example) -> Any:
    assert example.input_shape is not None, f"{entry.name}: example without input_shape"
    torch.manual_seed(0)
    return entry.factory(**example.args)


def _features(entry: Entry, example: Example, fresh: bool = False) -> tuple[Any, torch.Tensor]:
    """(model, features of the example input in training mode)."""
    memo: dict[str, Any] = {} if fresh else _memo(Case(entry, example))
    if "features" not in memo:
        model = _build_backbone(entry, example)
        memo.update(model=model, features=model.forward_features(_input(example)))
    return memo["model"], memo["features"]


def _unused_forward(memo_case: Case, fresh: Callable[[], Any], memoized: Callable[[], Any]) -> Any:
    """The memo's forward pass the first time a backward pass is asked of it, else a fresh one
    (a graph is backpropagated once)."""
    memo = _memo(memo_case)
    if memo.get("backward_done"):
        return fresh()
    memo["backward_done"] = True
    return memoized()


def backbone_surface(entry: Entry, example: Example) -> None:
    model = _build_backbone(entry, example)
    for attr in ("num_features", "input_spec", "forward_features"):
        assert hasattr(model, attr), f"{entry.name}: backbone lacks {attr!r}"
    spec = model.input_spec
    assert example.input_shape is not None
    assert spec.channels == example.input_shape[0], f"{entry.name}: input_spec.channels {spec.channels} != example channels"
    assert spec.dims == len(example.input_shape) - 1, f"{entry.name}: input_spec.dims {spec.dims} != example dims"
    if entry.modalities:
        assert spec.modality in entry.modalities, \
            f"{entry.name}: input_spec.modality {spec.modality!r} not in declared {entry.modalities}"


def backbone_forward_shape(entry: Entry, example: Example) -> None:
    model, feats = _features(entry, example)
    problem = features_problem(feats, 2, model.num_features)
    assert problem is None, f"{entry.name}: {problem}"


def backbone_gradients(entry: Entry, example: Example) -> None:
    model, feats = _unused_forward(Case(entry, example), lambda: _features(entry, example, fresh=True),
                                   lambda: _features(entry, example))
    feats.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), \
        f"{entry.name}: no gradient reaches parameters"


def backbone_export_roundtrip(entry: Entry, example: Example) -> None:
    """safetensors out, fresh instance in, same outputs."""
    model, _ = _features(entry, example)
    model.eval()
    x = _input(example)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
        torch.manual_seed(1)
        fresh = entry.factory(**example.args)
        fresh.load_state_dict(load_file(str(path)))
        fresh.eval()
        with torch.no_grad():
            assert torch.allclose(model.forward_features(x), fresh.forward_features(x), atol=1e-5), \
                f"{entry.name}: outputs differ after export round trip"


# -------------------------------------------------------------------------------------- tasks
def _batch(backbone: Any, example: Example, with_label: int | None = None,
           dense: bool = False) -> dict:
    x = _input(example, batch=4)
    batch: dict = {backbone.input_spec.modality: x, "meta": [{"index": i} for i in range(4)]}
    if with_label is not None and dense:  # a dense task's target: a mask per item
        batch["mask"] = (x[:, :1] > 0).float()
    elif with_label is not None:
        batch["label"] = torch.arange(4) % with_label
    return batch


def _logits_shape(task: Any, x: torch.Tensor) -> tuple[int, ...]:
    """``[B, num_classes]``, or for a dense task ``[B, num_classes, *spatial]``."""
    dense = tuple(x.shape[2:]) if getattr(task, "dense", False) else ()
    return (4, task.num_classes, *dense)


def _build_task(case: Case) -> tuple[Any, Any]:
    """(backbone, task); a task declaring the backbone incompatible is skipped."""
    assert case.backbone is not None and case.backbone_example is not None
    backbone = _build_backbone(case.backbone, case.backbone_example)
    try:
        if case.entry.kind == "finetune":
            task = case.entry.factory(backbone, **{"num_classes": 2, **case.example.args})
        else:
            task = case.entry.factory(backbone, **case.example.args)
    except IncompatibleError as exc:
        assert str(exc), "IncompatibleError needs a message"
        pytest.skip(f"declared incompatible: {exc}")
    return backbone, task


def _forward(case: Case, fresh: bool = False) -> tuple[Any, Any, dict, dict]:
    """(backbone, task, batch, output) of one labelled training forward pass."""
    memo: dict[str, Any] = {} if fresh else _memo(case)
    if "out" not in memo:
        backbone, task = _build_task(case)
        assert case.backbone_example is not None
        batch = _batch(backbone, case.backbone_example, with_label=getattr(task, "num_classes", None),
                       dense=bool(getattr(task, "dense", False)))
        torch.manual_seed(0)
        memo.update(backbone=backbone, task=task, batch=batch, out=task(batch))
    return memo["backbone"], memo["task"], memo["batch"], memo["out"]


def task_builds(case: Case) -> None:
    backbone, task = _build_task(case)  # fresh: builds alone, no forward pass
    assert task.backbone is backbone, f"{case.entry.name}: task must keep the backbone as .backbone"
    if case.entry.kind == "finetune":
        assert isinstance(getattr(task, "num_classes", None), int), f"{case.entry.name}: no int num_classes"


def task_loss(case: Case) -> None:
    _, task, batch, out = _forward(case)
    assert "loss" in out, f"{case.entry.name}: forward must return 'loss'"
    loss = out["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss), f"{case.entry.name}: loss {loss}"
    if case.entry.kind == "finetune":
        x = batch[task.backbone.input_spec.modality]
        assert tuple(out["logits"].shape) == _logits_shape(task, x), \
            f"{case.entry.name}: logits {tuple(out['logits'].shape)}"


def task_gradients(case: Case) -> None:
    backbone, _, _, out = _unused_forward(case, lambda: _forward(case, fresh=True), lambda: _forward(case))
    out["loss"].backward()
    bgrads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in bgrads), \
        f"{case.entry.name}: no gradient reaches the backbone"


def task_figures(case: Case) -> None:
    _, task, _, out = _forward(case)
    figures = getattr(task, "figures", None)
    if figures is None:
        pytest.skip(f"{case.entry.name} draws no figures")
    detached = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
    figs = figures(detached, max_items=2)
    assert isinstance(figs, dict) and figs, f"{case.entry.name}: figures() returned nothing"
    pyplot = sys.modules.get("matplotlib.pyplot")  # loaded by the task, if it drew through it
    for fig in figs.values():
        if pyplot is not None:
            pyplot.close(fig)


def task_inference(case: Case) -> None:
    """The inference path: no label -> logits, no loss needed."""
    backbone, task, _, _ = _forward(case)
    assert case.backbone_example is not None
    task.eval()
    try:
        with torch.no_grad():
            out = task(_batch(backbone, case.backbone_example))
    finally:
        task.train()
    x = _input(case.backbone_example, batch=4)
    assert tuple(out["logits"].shape) == _logits_shape(task, x), \
        f"{case.entry.name}: logits without labels {tuple(out['logits'].shape)}"


# ---------------------------------------------------------------------------------- baselines
def baseline_predict_proba(entry: Entry, example: Example) -> None:
    if getattr(entry.factory, "dense", False):
        _dense_baseline_predict_proba(entry, example)
        return
    rng = np.random.RandomState(0)
    x = rng.randn(40, 1, 64).astype("float32")
    y = (x[:, 0, :16].mean(1) > 0).astype(int)
    if entry.modalities == ("image",):
        x = rng.randn(40, 1, 16, 16).astype("float32")
        y = (x[:, 0, :4].mean((1, 2)) > 0).astype(int)
    model = entry.factory(**example.args).fit(x, y)
    p = np.asarray(model.predict_proba(x))
    assert p.shape == (40, 2), f"{entry.name}: predict_proba shape {p.shape}"
    assert np.allclose(p.sum(1), 1, atol=1e-5), f"{entry.name}: probabilities do not sum to 1"


def _dense_baseline_predict_proba(entry: Entry, example: Example) -> None:
    """A segmentation baseline (``dense = True``): ``fit(images, masks)`` on images
    ``[C, *spatial]`` of the example's ``input_shape`` with a bright ball each (masks
    ``[*spatial]``), ``predict_proba([N, C, *spatial]) -> [N, *spatial]`` in [0, 1]."""
    if example.input_shape is None:
        raise AssertionError(f"{entry.name}: a dense baseline's example needs input_shape "
                             "[C, *spatial]")
    channels, *spatial = example.input_shape
    rng = np.random.RandomState(0)
    x = rng.randn(4, channels, *spatial).astype("float32")
    grid = np.indices(spatial)
    masks = np.stack([sum((g - n * f) ** 2 for g, n in zip(grid, spatial)) < (min(spatial) / 4) ** 2
                      for f in (0.4, 0.5, 0.6, 0.45)])
    x += 3.0 * masks[:, None]
    model = entry.factory(**example.args).fit(list(x[:3]), list(masks[:3]))
    p = np.asarray(model.predict_proba(x))
    assert p.shape == (4, *spatial), f"{entry.name}: predict_proba shape {p.shape}, " \
        f"expected {(4, *spatial)}"
    assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1, \
        f"{entry.name}: probabilities outside [0, 1]"


# ------------------------------------------------------------------------------------ loaders
def _data_paths(args: Any, key: str = "") -> list[str]:
    """The file/folder arguments of a loader example (also inside nested ``loader_args``)."""
    if isinstance(args, dict):
        return [p for k, v in args.items() for p in _data_paths(v, str(k))]
    if key in _PATH_KEYS and isinstance(args, str | os.PathLike):
        return [str(args)]
    if key in _PATH_KEYS and isinstance(args, list | tuple):
        return [str(v) for v in args if isinstance(v, str | os.PathLike)]
    return []


def _writer(entry: Entry) -> Callable[[Path], Any] | None:
    spec = entry.meta.get("example_data")
    if spec is None or callable(spec):
        return spec
    module, _, name = str(spec).partition(":")
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise AssertionError(f"loader {entry.name!r}: example_data={spec!r} does not name a "
                             f"function ({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def _example_folder(entry: Entry, example: Example) -> Iterator[None]:
    """Where the example's relative paths resolve: a temporary folder the loader's
    ``example_data`` writer fills, or the working directory (skipped when files are missing)."""
    if not entry.examples:
        pytest.skip(f"loader {entry.name!r} declares no examples; add "
                    "examples=[Example({...})] to its @component to have it checked")
    writer = _writer(entry)
    if writer is None:
        missing = [p for p in _data_paths(example.args) if not Path(p).exists()]
        if missing:
            pytest.skip(f"loader {entry.name!r}: example data not found: {', '.join(missing)} "
                        f"(relative to {Path.cwd()}); run from the repository root, or give the "
                        "loader an example_data= writer")
        yield
        return
    memo = _memo(Case(entry, example))
    if "folder" not in memo:  # removed when the memo moves on to the next case
        folder = tempfile.TemporaryDirectory(prefix=f"ssl-domains-{entry.name}-")
        writer(Path(folder.name))
        memo["folder"] = folder
    with contextlib.chdir(memo["folder"].name):
        yield


def _dataset(entry: Entry, example: Example, fresh: bool = False) -> Any:
    """The example's dataset, built the way a run builds it (through the registry)."""
    memo = _memo(Case(entry, example))
    if not fresh and "dataset" in memo:
        return memo["dataset"]
    reg = get_host().registry
    if entry.name in reg.names("loader") and reg.get("loader", entry.name).factory is entry.factory:
        ds = reg.create("loader", entry.name, **example.args)
    else:
        ds = entry.factory(**example.args)
    assert isinstance(ds, ItemDataset), \
        f"{entry.name}: {dataset_problem(ds)[1]}"  # type: ignore[index]
    assert len(ds) > 0, f"{entry.name}: the example built an empty dataset"
    if not fresh:
        memo["dataset"] = ds
    return ds


def _input_key(entry: Entry, item: Any) -> str:
    assert isinstance(item, dict), f"{entry.name}: items must be dicts, got {type(item).__name__}"
    keys = [k for k in MODALITIES if k in item]
    assert len(keys) == 1, f"{entry.name}: an item needs exactly one input key of {MODALITIES}, has {sorted(item)}"
    return keys[0]


def loader_builds(entry: Entry, example: Example) -> None:
    broken = dataset_problem(_dataset(entry, example, fresh=True))
    assert broken is None, f"{entry.name}: {broken[1]}"


def loader_item(entry: Entry, example: Example) -> None:
    problem = item_problem(_dataset(entry, example)[0], entry.modalities, entry.dims)
    assert problem is None, f"{entry.name}: {problem}"


def loader_labels(entry: Entry, example: Example) -> None:
    ds = _dataset(entry, example)
    labels = getattr(ds, "labels", None)
    if labels is None:
        pytest.skip(f"loader {entry.name!r}: the example is unlabeled (labels is None)")
    problem = labels_problem(labels, len(ds))
    assert problem is None, f"{entry.name}: {problem}"
    for i in sorted({0, len(ds) - 1}):
        item = ds[i]
        assert "label" in item, f"{entry.name}: item {i} has no 'label' while labels is set"
        assert int(item["label"]) == int(labels[i]), \
            f"{entry.name}: item {i} label {item['label']} != labels[{i}] {labels[i]}"


def loader_groups(entry: Entry, example: Example) -> None:
    ds = _dataset(entry, example)
    groups = getattr(ds, "groups", None)
    if groups is None:
        pytest.skip(f"loader {entry.name!r}: the example has no groups")
    problem = per_item_problem("groups", groups, len(ds))
    assert problem is None, f"{entry.name}: {problem}"


def loader_batch(entry: Entry, example: Example) -> None:
    ds = _dataset(entry, example)
    items = [ds[i] for i in range(min(2, len(ds)))]
    batch = collate_items(items)
    key = _input_key(entry, items[0])
    assert tuple(batch[key].shape) == (len(items), *items[0][key].shape), \
        f"{entry.name}: batch[{key!r}] {tuple(batch[key].shape)}"
    assert isinstance(batch.get("meta"), list) and len(batch["meta"]) == len(items), \
        f"{entry.name}: batch['meta'] must list one dict per item"


def loader_reproducible(entry: Entry, example: Example) -> None:
    a, b = _dataset(entry, example)[0], _dataset(entry, example, fresh=True)[0]
    key = _input_key(entry, a)
    assert torch.allclose(a[key], b[key], rtol=0, atol=0, equal_nan=True), \
        f"{entry.name}: a second build gives a different first item"
    assert a.get("label") == b.get("label"), f"{entry.name}: a second build gives a different label"


# ------------------------------------------------------------------------------------ running
_CHECKS: dict[str, dict[str, Callable[..., None]]] = {
    "loader": {"builds": loader_builds, "item": loader_item, "labels": loader_labels,
               "groups": loader_groups, "batch": loader_batch, "reproducible": loader_reproducible},
    "backbone": {"surface": backbone_surface, "forward_shape": backbone_forward_shape,
                 "gradients": backbone_gradients, "export_roundtrip": backbone_export_roundtrip},
    "pretext": {"builds": task_builds, "loss": task_loss, "gradients": task_gradients,
                "figures": task_figures},
    "finetune": {"builds": task_builds, "loss": task_loss, "gradients": task_gradients,
                 "inference": task_inference},
    "baseline": {"predict_proba": baseline_predict_proba},
}


def missing_requirements(entry: Entry) -> list[str]:
    """Modules named in the component's ``requires`` metadata that are not installed."""
    return [m for m in entry.meta.get("requires", ()) if importlib.util.find_spec(m) is None]


def _run(case: Case, prop: str) -> None:
    check = _CHECKS[case.entry.kind][prop]
    if case.entry.kind in ("pretext", "finetune"):
        check(case)
    elif case.entry.kind == "loader":
        with _example_folder(case.entry, case.example):
            check(case.entry, case.example)
    else:
        check(case.entry, case.example)


def check_case(case: Case) -> None:
    """Run the check of one case (raises AssertionError naming the component); a case
    without ``prop`` runs every property of its kind (a property that does not apply is
    passed over; when none applied, the case is skipped).

    A component (or its paired backbone) whose optional dependencies are absent (declared with
    ``@component(..., requires=("aeon",), install_hint="pip install ...")``) is skipped with
    its install hint, unless ``SSL_DOMAINS_REQUIRE_EXTRAS=1`` (CI's all-extras pass), where
    that is a failure.
    """
    for entry in (case.entry, case.backbone):
        missing = missing_requirements(entry) if entry is not None else []
        if entry is not None and missing:
            hint = entry.meta.get("install_hint") or f"pip install {' '.join(missing)}"
            message = hint if repr(entry.name) in hint else \
                f"{entry.kind} {entry.name!r} needs {', '.join(missing)}: {hint}"
            if os.environ.get("SSL_DOMAINS_REQUIRE_EXTRAS", "") not in ("", "0"):
                pytest.fail(f"{message} (SSL_DOMAINS_REQUIRE_EXTRAS is set)")
            pytest.skip(message)
    kind = case.entry.kind
    if kind not in _CHECKS:
        raise AssertionError(f"no conformance checks for kind {kind!r}")
    if case.prop is not None:
        if case.prop not in _CHECKS[kind]:
            raise AssertionError(f"no property {case.prop!r} for kind {kind!r} (have: {', '.join(PROPERTIES[kind])})")
        _run(case, case.prop)
        return
    skipped: list[str] = []
    for prop in PROPERTIES[kind]:
        try:
            _run(case, prop)
        except pytest.skip.Exception as exc:
            skipped.append(f"{prop}: {exc.msg}")
    if len(skipped) == len(PROPERTIES[kind]):
        pytest.skip("; ".join(skipped))
