"""The plugin contract: every hook a domain plugin may implement.

Hooks only *register*; each receives a :class:`~ssl_domains.registry.Registrar` bound to the
calling plugin, which validates at ``add()`` time and names the plugin in every error.
Implement them with ``from ssl_domains import hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssl_domains import hookspec

if TYPE_CHECKING:
    import click
    from torch import nn

    from ssl_domains.contracts import Conversion
    from ssl_domains.registry import Registrar


@hookspec
def register_loaders(registry: Registrar) -> None:
    """Register dataset factories: ``factory(**kw) -> torch.utils.data.Dataset`` of dict items.

    Items carry the shared keys (``image`` or ``signal``, ``label``, ``mask``, ``meta``: the
    constants ``IMAGE``, ``SIGNAL``, ``LABEL``, ``MASK``, ``META`` of :mod:`ssl_domains.contracts`). A
    labeled dataset exposes ``labels`` (one int per item) so the host can split it; it may
    expose ``groups`` (e.g. a hashed case id per item) to keep a case on one side of a split,
    ``stats`` (normalisation statistics; the host passes them as ``stats=`` to validation,
    test and prediction loaders of the same kind and stores them in exports),
    ``augment_item(item)`` (train-time augmentation; the host applies it to training items
    only) and ``set_epoch(epoch)`` (called before each training epoch, for items that vary
    by epoch such as random patches: drawn from the epoch, not from a hidden counter, they
    are the same in a resumed run). Unreadable inputs are listed in ``skipped`` as
    ``(path, reason)`` pairs. A loader that wraps another registered loader declares a
    keyword parameter ``registry``: :meth:`~ssl_domains.registry.Registry.create` passes the
    registry that builds it, to build the wrapped one (``holdout``, ``tumor_patches``).
    """


@hookspec
def register_backbones(registry: Registrar) -> None:
    """Register backbone factories: ``factory(**kw) -> nn.Module`` satisfying
    :class:`~ssl_domains.contracts.Backbone` (``num_features``, ``input_spec``,
    ``forward_features``)."""


@hookspec
def register_pretext_tasks(registry: Registrar) -> None:
    """Register pretext tasks: ``factory(backbone, **kw) -> nn.Module`` whose
    ``forward(batch)`` returns ``{"loss": tensor, ...}`` and which keeps ``.backbone``.

    A task that cannot wrap a given backbone raises
    :class:`~ssl_domains.errors.IncompatibleError` from its factory.
    """


@hookspec
def register_finetune_tasks(registry: Registrar) -> None:
    """Register fine-tuning tasks: ``factory(backbone, num_classes, **kw) -> nn.Module``
    satisfying :class:`~ssl_domains.contracts.FinetuneTask`."""


@hookspec
def register_baselines(registry: Registrar) -> None:
    """Register classical baselines for sweeps: ``factory(**kw) -> Baseline`` (``fit``,
    ``predict_proba`` on NumPy arrays)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands; put them under a group named after the plugin
    (``ssl-domains medical convert ...``)."""


@hookspec(firstresult=True)
def convert_checkpoint(
    state_dict: dict[str, Any], source: str, backbone: nn.Module
) -> Conversion | None:
    """Map foreign weights onto a registered backbone.

    Args:
        state_dict: The foreign checkpoint, already unwrapped from ``{"state_dict": ...}``
            nesting and ``module.`` prefixes.
        source: What the user said it is (``"auto"``, ``"monai_vitautoenc"``,
            ``"models_genesis"``, ``"medicalnet"``, ...).
        backbone: The freshly built backbone to load into.

    Returns:
        A :class:`~ssl_domains.contracts.Conversion` when this plugin handled it, else None.
    """
