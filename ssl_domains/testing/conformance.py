"""Checks every registered backbone, pretext task, fine-tuning task and baseline must pass:
forward shapes, finite loss, gradients reaching parameters, export round-trip."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ssl_domains.contracts import Example
from ssl_domains.errors import IncompatibleError
from ssl_domains.plugins import get_host
from ssl_domains.registry import Entry

__all__ = ["Case", "component_cases", "check_case", "missing_requirements"]


@dataclass(frozen=True)
class Case:
    """One check: a component (with one of its examples), paired with a backbone when needed."""

    entry: Entry
    example: Example
    backbone: Entry | None = None
    backbone_example: Example | None = None

    def __str__(self) -> str:
        s = f"{self.entry.kind}:{self.entry.name}[{self.entry.examples.index(self.example) if self.example in self.entry.examples else 0}]"
        if self.backbone is not None and self.backbone_example is not None:
            s += f"+{self.backbone.name}[{self.backbone.examples.index(self.backbone_example)}]"
        return s


def _backbone_examples(plugins: set[str]) -> list[tuple[Entry, Example]]:
    """Every example of every backbone registered by one of ``plugins``."""
    return [(e, ex) for e in get_host().registry.entries("backbone") if e.plugin in plugins
            for ex in e.examples]


def component_cases(plugin: str | None = None) -> list[Case]:
    """Every (component, example) of ``plugin`` (all plugins when None); tasks are paired with
    every backbone example of the same modality (from that plugin or the host)."""
    host = get_host()
    if plugin is not None and plugin not in host.plugins:
        from ssl_domains.errors import PluginError

        raise PluginError(
            f"plugin {plugin!r} is not loaded (loaded: {', '.join(host.plugins)}; skipped: "
            f"{host.skipped or 'none'}); install it (pip install -e <plugin folder>) and run "
            "the tests from outside a folder of the same name"
        )
    reg = host.registry
    cases: list[Case] = []
    mine = [e for e in reg.entries() if plugin is None or e.plugin == plugin]
    for e in mine:
        if e.kind == "backbone":
            if not e.examples:
                cases.append(Case(e, Example()))
            cases += [Case(e, ex) for ex in e.examples]
        elif e.kind in ("pretext", "finetune"):
            for ex in e.examples or (Example(),):
                for be, bex in _backbone_examples({e.plugin}):
                    if e.modalities and be.modalities and not set(e.modalities) & set(be.modalities):
                        continue
                    cases.append(Case(e, ex, be, bex))
        elif e.kind == "baseline":
            cases.append(Case(e, e.examples[0] if e.examples else Example()))
    return cases


def _input(example: Example, batch: int = 2) -> torch.Tensor:
    if example.input_shape is None:
        raise AssertionError("backbone examples need input_shape")
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, *example.input_shape), generator=g)


def _build_backbone(entry: Entry, example: Example) -> Any:
    torch.manual_seed(0)
    return entry.factory(**example.args)


def check_backbone(entry: Entry, example: Example) -> None:
    model = _build_backbone(entry, example)
    for attr in ("num_features", "input_spec", "forward_features"):
        assert hasattr(model, attr), f"{entry.name}: backbone lacks {attr!r}"
    spec = model.input_spec
    assert example.input_shape is not None, f"{entry.name}: example without input_shape"
    assert spec.channels == example.input_shape[0], f"{entry.name}: input_spec.channels {spec.channels} != example channels"
    assert spec.dims == len(example.input_shape) - 1, f"{entry.name}: input_spec.dims {spec.dims} != example dims"
    if entry.modalities:
        assert spec.modality in entry.modalities
    x = _input(example)
    feats = model.forward_features(x)
    assert tuple(feats.shape) == (2, model.num_features), f"{entry.name}: features {tuple(feats.shape)}"
    assert torch.isfinite(feats).all(), f"{entry.name}: non-finite features"
    feats.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), f"{entry.name}: no gradient reaches parameters"
    # export round trip: safetensors out, fresh instance in, same outputs
    model.eval()
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


def _batch(backbone: Any, example: Example, with_label: int | None = None) -> dict:
    x = _input(example, batch=4)
    batch: dict = {backbone.input_spec.modality: x, "meta": [{"index": i} for i in range(4)]}
    if with_label is not None:
        batch["label"] = torch.arange(4) % with_label
    return batch


def check_task(case: Case) -> None:
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
    assert task.backbone is backbone, f"{case.entry.name}: task must keep the backbone as .backbone"
    n_classes = getattr(task, "num_classes", None)
    batch = _batch(backbone, case.backbone_example, with_label=n_classes)
    torch.manual_seed(0)
    out = task(batch)
    assert "loss" in out, f"{case.entry.name}: forward must return 'loss'"
    loss = out["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss), f"{case.entry.name}: loss {loss}"
    if case.entry.kind == "finetune":
        assert tuple(out["logits"].shape) == (4, n_classes), f"{case.entry.name}: logits {tuple(out['logits'].shape)}"
    loss.backward()
    bgrads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in bgrads), \
        f"{case.entry.name}: no gradient reaches the backbone"
    figures = getattr(task, "figures", None)
    if figures is not None and case.entry.kind == "pretext":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        detached = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        figs = figures(detached, max_items=2)
        assert isinstance(figs, dict) and figs, f"{case.entry.name}: figures() returned nothing"
        for fig in figs.values():
            plt.close(fig)
    # the inference path: no label -> logits, no loss needed
    if case.entry.kind == "finetune":
        task.eval()
        with torch.no_grad():
            nolabel = {k: v for k, v in batch.items() if k != "label"}
            assert tuple(task(nolabel)["logits"].shape) == (4, n_classes)


def check_baseline(entry: Entry, example: Example) -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(40, 1, 64).astype("float32")
    y = (x[:, 0, :16].mean(1) > 0).astype(int)
    if entry.modalities == ("image",):
        x = rng.randn(40, 1, 16, 16).astype("float32")
        y = (x[:, 0, :4].mean((1, 2)) > 0).astype(int)
    model = entry.factory(**example.args).fit(x, y)
    p = np.asarray(model.predict_proba(x))
    assert p.shape == (40, 2), f"{entry.name}: predict_proba shape {p.shape}"
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def missing_requirements(entry: Entry) -> list[str]:
    """Modules named in the component's ``requires`` metadata that are not installed."""
    return [m for m in entry.meta.get("requires", ()) if importlib.util.find_spec(m) is None]


def check_case(case: Case) -> None:
    """Run the checks for one case (raises AssertionError with the component's name).

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
    if kind == "backbone":
        check_backbone(case.entry, case.example)
    elif kind in ("pretext", "finetune"):
        check_task(case)
    elif kind == "baseline":
        check_baseline(case.entry, case.example)
