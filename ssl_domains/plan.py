"""``ssl-domains plan CONFIG``: what a run would do, before running it.

For each stage of the config (pre-training, fine-tuning), built by the run's own stage skeleton
up to its loaders (:mod:`ssl_domains.engine.stage`): what the data loaders found (items,
classes, skipped inputs), the split, steps per epoch and in all, the model's parameters, and an estimate
of memory and time per epoch on this machine, measured by running a few real training steps
(forward, backward, optimizer step) on the first batch.

Nothing is written: no run folder, no checkpoint.
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from typing import Any

import torch
from torch.utils.data import DataLoader

from ssl_domains.contracts import skipped_of
from ssl_domains.data.collate import collate_items
from ssl_domains.data.datasets import groups_of, labels_of
from ssl_domains.engine.finetune import FinetuneRecipe, build_finetune_sources
from ssl_domains.engine.loop import make_optimizer, planned_steps
from ssl_domains.engine.pretrain import PretrainRecipe
from ssl_domains.engine.runtime import Runtime
from ssl_domains.engine.segmentation import DenseRecipe, is_dense
from ssl_domains.engine.stage import prepare
from ssl_domains.plugins import get_host
from ssl_domains.registry import Registry

__all__ = ["plan", "format_plan"]

_MB = 1024 * 1024


def _rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux: kilobytes


def _data_info(ds: Any) -> dict[str, Any]:
    labels = labels_of(ds)
    skipped = skipped_of(ds)
    reasons = Counter(str(r) for _, r in skipped)
    return {
        "items": len(ds),
        "classes": None if labels is None else {str(k): v for k, v in sorted(Counter(labels).items())},
        "skipped": len(skipped),
        "skipped_reasons": dict(reasons),
    }


def _params(model: Any, backbone: Any) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "backbone": sum(p.numel() for p in backbone.parameters()),
    }


def _measure(model: Any, train_ds: Any, data_cfg: Any, train_cfg: Any, device_name: str,
             steps: int) -> dict[str, Any]:
    """Time ``steps`` training steps on the first batch (after one warm-up step) and the memory
    they need."""
    rt = Runtime.create(device_name, train_cfg.amp)
    model.to(rt.device).train()
    batch = next(iter(DataLoader(train_ds, batch_size=data_cfg.batch_size, shuffle=False,
                                 collate_fn=collate_items, num_workers=0)))
    batch = rt.to_device(batch)
    opt = make_optimizer([{"params": [p for p in model.parameters() if p.requires_grad]}], train_cfg)
    cuda = rt.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(rt.device)
    rss_before = _rss_peak_bytes()
    times = []
    for i in range(steps + 1):
        if cuda:
            torch.cuda.synchronize(rt.device)
        t0 = time.perf_counter()
        with rt.autocast():
            loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(rt.device)
        if i:  # the first step warms up (allocator, kernels)
            times.append(time.perf_counter() - t0)
    state = sum(p.numel() * p.element_size() for p in model.parameters())
    out: dict[str, Any] = {
        "device": str(rt.device),
        "threads": torch.get_num_threads(),
        "seconds_per_step": sum(times) / len(times),
        "measured_steps": len(times),
        "weights_grads_optimizer_bytes": state * 4,  # weights, gradients, two Adam moments
    }
    if cuda:
        out["peak_bytes"] = int(torch.cuda.max_memory_allocated(rt.device))
        out["peak_what"] = "GPU memory allocated at the peak of a training step"
    else:
        out["peak_bytes"] = _rss_peak_bytes()
        out["peak_what"] = "peak resident memory of this process (data loaded, model, training steps)"
        out["peak_growth_bytes"] = max(0, out["peak_bytes"] - rss_before)
    return out


def _stage_estimate(info: dict[str, Any]) -> None:
    m, s = info.get("measured"), info["steps"]
    if m:
        m["seconds_per_epoch"] = m["seconds_per_step"] * s["steps_per_epoch"]
        m["seconds_total"] = m["seconds_per_step"] * s["total_steps"]


def _loader_steps(loader: Any, data_cfg: Any, train_cfg: Any) -> dict[str, Any]:
    """Steps of the run's own training loader (one process) and the schedule laid over them."""
    per_epoch = len(loader)
    return {"batch_size": data_cfg.batch_size, "steps_per_epoch": per_epoch, "epochs": train_cfg.epochs,
            "total_steps": planned_steps(train_cfg, per_epoch)}


def plan(cfg: Any, *, measure_steps: int = 3, registry: Registry | None = None) -> dict[str, Any]:
    """The plan of ``cfg`` (a :class:`~ssl_domains.config.RunConfig`) as a JSON-friendly dict.

    Each stage is built by the run's own skeleton up to its loaders
    (:func:`ssl_domains.engine.stage.prepare`): the same datasets, split, label budget,
    classes, model and training loader; no weights are loaded and nothing is written.

    Args:
        cfg: The resolved run config.
        measure_steps: Training steps timed per stage (0: no measurement, no estimates).
        registry: Where the components come from (the plugin host's by default).

    Raises:
        SSLDomainsError: The same errors the run would stop with while building data and model.
    """
    registry = registry if registry is not None else get_host().registry
    out: dict[str, Any] = {"name": cfg.name, "backbone": cfg.backbone.name, "stages": {}}
    if cfg.pretrain is not None:
        p = cfg.pretrain
        torch.manual_seed(cfg.seed)
        built = prepare(PretrainRecipe(cfg, registry))
        data, train, val = built.data["data"], built.data["train"], built.data["val"]
        info: dict[str, Any] = {"task": p.task.name, "data": {"train": _data_info(data)}}
        if p.data.val is not None:
            info["data"]["val"] = _data_info(val)
        else:  # split off the loader's items as the run splits them (by group when it has groups)
            info["data"]["train"]["items"] = len(train)
            info["data"]["train"]["from"] = f"{len(data)} items of the loader, less validation"
            info["data"]["val"] = {"items": len(val), "from": f"{p.data.val_fraction:.0%} of the loader's "
                                   + ("groups" if groups_of(data) is not None else "items")}
        info["steps"] = _loader_steps(built.train_loader, p.data, p.train)
        info["parameters"] = _params(built.task, built.backbone)
        if measure_steps:
            info["measured"] = _measure(built.task, train, p.data, p.train, cfg.device, measure_steps)
        _stage_estimate(info)
        out["stages"]["pretrain"] = info
    if cfg.finetune is not None:
        out["stages"]["finetune"] = _finetune_plan(cfg, registry, measure_steps)
    return out


def _finetune_plan(cfg: Any, registry: Registry, measure_steps: int) -> dict[str, Any]:
    f = cfg.finetune
    sources = build_finetune_sources(f, registry)
    if is_dense(registry, f.task.name):
        return _dense_plan(cfg, registry, sources, measure_steps)
    torch.manual_seed(cfg.seed)
    recipe = FinetuneRecipe(cfg, registry, sources)
    built = prepare(recipe)
    data = built.data
    info: dict[str, Any] = {"task": f.task.name, "data": {
        "pool": _data_info(data["pool"]),
        "label_budget": data["n_budget"],
        "train": {"items": len(data["train"])},
        "val": {"items": len(data["val"])},
    }}
    if data["test"] is not None:
        info["data"]["test"] = _data_info(data["test"])
    info["steps"] = _loader_steps(built.train_loader, f.data, f.train)
    info["num_classes"] = recipe.n_classes
    info["parameters"] = _params(built.task, built.backbone)
    if measure_steps:
        info["measured"] = _measure(built.task, data["train"], f.data, f.train, cfg.device, measure_steps)
    _stage_estimate(info)
    return info


def _dense_plan(cfg: Any, registry: Registry, sources: dict[str, Any], measure_steps: int) -> dict[str, Any]:
    """A dense task's plan: its budget counts cases, the run's own case selection."""
    f = cfg.finetune
    torch.manual_seed(cfg.seed)
    built = prepare(DenseRecipe(cfg, registry, sources))
    data = built.data
    info: dict[str, Any] = {"task": f.task.name, "data": {
        "pool": _data_info(data["pool"]),
        "label_budget": data["n_train_cases"],
        "train": {"items": len(data["train"]), "from": f"patches of {data['n_train_cases']} case(s)"},
        "val": {"items": len(data["val"]), "from": "whole cases"},
    }}
    if data["test"] is not None:
        info["data"]["test"] = _data_info(data["test"])
    info["steps"] = _loader_steps(built.train_loader, f.data, f.train)
    info["num_classes"] = 2  # lesion and background, as the export says
    info["parameters"] = _params(built.task, built.backbone)
    if measure_steps:
        info["measured"] = _measure(built.task, data["train"], f.data, f.train, cfg.device, measure_steps)
    _stage_estimate(info)
    return info


def _m(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n:,}"


def _bytes(n: float) -> str:
    return f"{n / _MB / 1024:.2f} GiB" if n >= 1024 * _MB else f"{n / _MB:.0f} MiB"


def _secs(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _data_line(role: str, d: dict[str, Any]) -> str:
    line = f"    {role}: {d['items']} items"
    if d.get("from"):
        line += f" ({d['from']})"
    if d.get("classes"):
        line += " (classes " + ", ".join(f"{k}: {v}" for k, v in d["classes"].items()) + ")"
    if d.get("skipped"):
        line += f"; {d['skipped']} skipped (" + "; ".join(f"{r}: {n}" for r, n in d["skipped_reasons"].items()) + ")"
    return line


def format_plan(p: dict[str, Any]) -> list[str]:
    """The plan as lines for a person."""
    lines = [f"plan of {p['name']} (backbone {p['backbone']})"]
    for stage, info in p["stages"].items():
        lines.append(f"{stage} ({info['task']}):")
        lines.append("  data:")
        for role, d in info["data"].items():
            if role == "label_budget" and "whole cases" in str(info["data"].get("val", {}).get("from")):
                lines.append(f"    label budget: {d} training case(s) (validation: further cases)")
            elif role == "label_budget":
                lines.append(f"    label budget: {d} labeled items (train + validation)")
            else:
                lines.append(_data_line(role, d))
        s = info["steps"]
        lines.append(f"  steps: {s['steps_per_epoch']} per epoch (batch {s['batch_size']}), "
                     f"{s['total_steps']} in all ({s['epochs']} epochs)")
        par = info["parameters"]
        lines.append(f"  model: {_m(par['total'])} parameters ({_m(par['trainable'])} trainable; "
                     f"backbone {_m(par['backbone'])})")
        m = info.get("measured")
        if m:
            lines.append(f"  memory: weights + gradients + optimizer state {_bytes(m['weights_grads_optimizer_bytes'])}; "
                         f"measured {_bytes(m['peak_bytes'])} ({m['peak_what']})")
            lines.append(f"  time on {m['device']} ({m['threads']} thread{'s' * (m['threads'] != 1)}): {m['seconds_per_step']:.3f} s per step "
                         f"(mean of {m['measured_steps']}) -> {_secs(m['seconds_per_epoch'])} per epoch, "
                         f"{_secs(m['seconds_total'])} for {s['total_steps']} steps (training steps only; "
                         "validation and data loading of later epochs not included)")
    return lines
