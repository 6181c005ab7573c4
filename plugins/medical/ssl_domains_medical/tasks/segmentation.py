"""Voxel-wise tumour segmentation: a U-Net decoder on the backbone's feature pyramid.

``tumor_segmentation`` is the dense fine-tuning task of the medical plugin (``dense = True``:
the engine trains it on mask patches, validates and tests it on whole cases with
:meth:`TumorSegmentation.segment`, and scores voxels and lesions, see
:mod:`ssl_domains.scoring.lesions`). The decoder is the one the reconstruction pretext tasks
train (:class:`~ssl_domains_medical.pretext.decoder.PyramidDecoder`), so a masked-inpainting
pre-training at full resolution hands fine-tuning its decoder as well as its encoder
(:meth:`TumorSegmentation.load_pretext_state`): the nnU-Net/Models Genesis practice of
fine-tuning the whole pre-trained encoder-decoder.

References: Ronneberger et al., "U-Net", MICCAI 2015; Isensee et al., "nnU-Net", Nature
Methods 18 (2021) (Dice + cross-entropy, foreground oversampling, Gaussian sliding window);
Zhou et al., "Models Genesis", MedIA 67 (2021).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from torch import nn

from ssl_domains.contracts import Example
from ssl_domains.registry import component
from ssl_domains_medical.augment import augmentation_from
from ssl_domains_medical.pretext.decoder import PyramidDecoder, check_pyramid_backbone

__all__ = ["TumorSegmentation", "SEGMENTATION_PREFERENCE"]

#: ``select: auto``'s order of preference for segmentation (simplest that is within tolerance
#: of the best first: the classical voxel classifier, then the frozen encoder, then ssl).
SEGMENTATION_PREFERENCE = ("baseline", "linear_probe", "ssl", "scratch")


@component(
    "tumor_segmentation",
    description="Voxel-wise lesion segmentation: U-Net decoder on the encoder pyramid, Dice + CE, "
    "Gaussian sliding-window inference, lesion-level scores",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({}), Example({"decoder_width": 32, "overlap": 0.25})],
    prefer=SEGMENTATION_PREFERENCE,
)
class TumorSegmentation(nn.Module):
    """Segment lesions voxel by voxel (class 1 = lesion).

    Training batches are patches with their ``mask`` (the loaders' ``patch_size`` with
    ``pos_fraction``: foreground-oversampled, as nnU-Net and MONAI's
    ``RandCropByPosNegLabeld``); the loss is Dice + cross-entropy over both classes. At
    evaluation :meth:`segment` slides a ``roi_size`` window (default: the training patch size,
    set by the engine from the first training batch) over the whole case and blends windows
    with a Gaussian.

    Args:
        backbone: A 2-D/3-D image backbone with a feature pyramid (``unet_encoder``,
            ``resnet_encoder``, ``vit_encoder``, ``swin_encoder``).
        num_classes: 2 (background, lesion).
        decoder_width: Largest decoder width (as the pretext tasks' ``decoder_width``; equal
            widths let :meth:`load_pretext_state` reuse a pre-trained decoder).
        decoder_min_width: Smallest width of the final upsampling steps.
        roi_size: Sliding-window size; None: the training patch size.
        overlap: Sliding-window overlap in [0, 1).
        sw_batch_size: Windows run at once.
        augment: Train-time batch augmentation (``Augmentation`` keys): the spatial part
            (``scale``, ``rotate``, ``translate``, ``flip_axes``) moves image and mask by the
            same random affine, then ``brightness``, ``contrast``, ``noise`` change the image.
            Keys left out do nothing (no warp, no intensity change); None: no augmentation.
        tta_flip: At inference, average the probabilities of the volume and its mirrors along
            every combination of spatial axes (nnU-Net's mirroring: 8 passes in 3-D, 4 in 2-D).

    Raises:
        IncompatibleError: The backbone has no feature pyramid.
        ValueError: ``num_classes`` not 2, bad overlap, or bad augmentation values.
    """

    #: A dense task: targets are masks, outputs voxel maps (the engine's segmentation path).
    dense = True

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 2,
        decoder_width: int = 256,
        decoder_min_width: int = 16,
        roi_size: Sequence[int] | int | None = None,
        overlap: float = 0.5,
        sw_batch_size: int = 4,
        augment: dict[str, Any] | None = None,
        tta_flip: bool = False,
    ) -> None:
        super().__init__()
        check_pyramid_backbone(backbone, "tumor_segmentation")
        if num_classes != 2:
            raise ValueError(f"tumor_segmentation is binary (background, lesion); num_classes "
                             f"must be 2, got {num_classes}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        encoder: Any = backbone
        spec = encoder.input_spec
        self.backbone: Any = backbone
        self.num_classes = 2
        self.key = spec.modality
        self.dims = spec.dims
        self.decoder = PyramidDecoder.for_encoder(encoder, 2, max_width=decoder_width,
                                                  min_width=decoder_min_width, target_stride=1)
        self.roi_size = None if roi_size is None else (
            [int(roi_size)] * spec.dims if isinstance(roi_size, int) else [int(r) for r in roi_size])
        self.overlap = overlap
        self.sw_batch_size = sw_batch_size
        self.tta_flip = bool(tta_flip)
        self.augment = augmentation_from({"scale": [1.0, 1.0], "rotate": 0.0, "translate": 0.0,
                                          "flip_axes": [], "brightness": 0.0, "contrast": 0.0,
                                          "padding": "border", **augment} if augment else None)
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False,
                                  smooth_nr=1e-5, smooth_dr=1e-5, batch=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Voxel logits ``[B, 2, *spatial]`` of images ``[B, C, *spatial]``."""
        x = torch.nan_to_num(x.float())
        return self.decoder(self.backbone.forward_pyramid(x), tuple(x.shape[2:]))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"logits": [B, 2, *spatial]}``, plus ``"loss"`` when the batch has a ``mask``."""
        x = batch[self.key]
        if self.roi_size is None:
            self.roi_size = [int(s) for s in x.shape[2:]]
        mask = batch.get("mask")
        if self.training and self.augment is not None:
            with torch.no_grad():
                x, mask = self.augment.warp_with_mask(x.float(), mask)
                x = self.augment.intensity(x)
        logits = self.logits(x)
        out: dict[str, Any] = {"logits": logits}
        if mask is not None:
            target = (mask[:, :1] > 0).to(logits.dtype)
            out["loss"] = self.loss_fn(logits.float(), target)
        return out

    @torch.no_grad()
    def segment(self, volume: torch.Tensor) -> torch.Tensor:
        """Lesion probability ``[*spatial]`` of one case ``[C, *spatial]`` (Gaussian-blended
        sliding window of ``roi_size``; eval mode, the previous mode restored).

        Raises:
            ValueError: No ``roi_size`` (neither given nor seen in training) or a volume that is
                not ``[C, *spatial]`` of the backbone's dims.
        """
        if self.roi_size is None:
            raise ValueError("tumor_segmentation.segment needs roi_size (the training patch size)")
        if volume.ndim != self.dims + 1:
            raise ValueError(f"segment expects one case [C, *spatial] with {self.dims} spatial "
                             f"dims, got shape {tuple(volume.shape)}")
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            x = torch.nan_to_num(volume.float())[None].to(device)
            roi = [min(r, s) if s >= r else r for r, s in zip(self.roi_size, x.shape[2:])]
            spatial = range(2, 2 + self.dims)
            flips: list[tuple[int, ...]] = [
                c for n in range(self.dims + 1 if self.tta_flip else 1)
                for c in itertools.combinations(spatial, n)]
            prob = torch.zeros(x.shape[2:])
            for axes in flips:
                xf = x.flip(axes) if axes else x
                logits = sliding_window_inference(xf, roi, self.sw_batch_size, self.logits,
                                                  overlap=self.overlap, mode="gaussian",
                                                  padding_mode="constant")
                p = torch.as_tensor(logits).float().softmax(1)[0, 1].cpu()
                prob += p.flip([a - 2 for a in axes]) if axes else p
            return prob / len(flips)
        finally:
            self.train(was_training)

    def load_pretext_state(self, state: Mapping[str, torch.Tensor]) -> list[str]:
        """Copy a pretext task's decoder weights (``decoder.*`` of its ``model.safetensors``)
        when every layer but the output head agrees in name and shape; returns the names copied
        (empty when the pretext task had another decoder, e.g. one of half resolution)."""
        own = self.decoder.state_dict()
        take = {k[len("decoder."):]: v for k, v in state.items()
                if k.startswith("decoder.") and k[len("decoder."):] in own
                and tuple(own[k[len("decoder."):]].shape) == tuple(v.shape)}
        # all or nothing: a decoder of other widths, or one that stopped short of full
        # resolution (other layers at each depth), is not a partial fit
        if not take or any(k not in take for k in own if not k.startswith("head.")):
            return []
        self.decoder.load_state_dict({**own, **take})
        return sorted(take)
