"""A diffusion model that trains, restores and ships like the U-Nets: ``murallab train --config
configs/diffusion_64.yaml``, ``murallab restore --checkpoint pretrained:diffusion-64 --sampler ddim``.

``DiffusionRestorer(scales=(64,))`` holds one :class:`TimeUNet` per scale and the noise schedule they share.

- **Refinement** (``refine=True``): the condition's hole pixels are not zeros but the push-pull fill of the known
  pixels (``murallab.classical.push_pull``), and each network predicts a *correction* to it,
  x̂_0 = fill + net(x_t, t, cond), its last layer starting at zero: the untrained model restores as push-pull, and
  training only has to add what a smooth fill misses (as ``UNet(refine=True)`` does; BENCHMARKS.md measures it).
  With ``refine={"name": "FFCUNet", ...}`` the fill is a trained one-pass restorer's instead (frozen): that network
  already predicts roughly the posterior *mean*, and the diffusion learns to draw a *sample* around it.
- **Training** (``model.train()``): ``forward(image, mask)`` draws a step t and noise ε, noises the image and
  returns, per scale, what :class:`murallab.losses.DiffusionLoss` needs (the prediction, its target, the mask, the
  one-step estimate x̂_0 and the true x_0). The condition never holds a hole pixel: one scale is conditioned on
  ``mask_condition(image, mask)`` (the masked image, the mask); two or more scales are DiffuMural-lite
  (``multiscale.py``): each is conditioned on ``scale_condition`` with the image itself at the next-coarser scale as
  the coarse result (teacher forcing). With probability ``cond_drop`` a sample's mask is replaced by zeros, "nothing
  is known" (the condition dropout of classifier-free guidance), so the same network is also an *unconditional*
  model: RePaint samples it that way.
- **Validation** (``model.eval()``): the same forward from fixed noise (seed 0) and no condition dropped, so epochs
  compare;
  ``restored(output, batch)`` is the one-step estimate x̂_0 composited with the known pixels, a cheap stand-in for a
  sample that lets the trainer keep ``best.pt``.
- **Restoration**: ``sample(known, mask, sampler=..., steps=...)``; ``murallab.restore`` tiles it over an image of
  any size.

In training mode t and ε come from torch's global generator, which the trainer seeds and saves with every
checkpoint (as it does for dropout), so a resumed run continues the same way.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .. import nn as networks
from ..classical import push_pull
from ..data.masks import check_mask, composite
from ..nn.blocks import zero_last_layer
from .multiscale import downsample, downsample_mask, multiscale_sample, scale_condition
from .repaint import repaint
from .samplers import CallCounter, ddim_sample, ddpm_sample, from_diffusion, mask_condition, to_diffusion
from .schedule import NoiseSchedule, _check_prediction
from .unet import TimeUNet

SAMPLERS = ("ddim", "ddpm", "repaint", "multiscale")
STOP = 0.4  # DDIM, DDPM and multi-scale stop at 0.4 T (``DiffusionRestorer.sample``'s ``stop``)


class FillCorrection(nn.Module):
    """``x̂_0 = cond[:, fill] + net(x_t, t, cond)``: an x0-network that corrects the classical fill carried in its
    condition (channels ``fill``); the net's last layer starts at zero, so at first x̂_0 is the fill itself."""

    prediction = "x0"

    def __init__(self, net: TimeUNet, fill: slice):
        super().__init__()
        self.net, self.fill = net, fill
        zero_last_layer(net.out[-1])

    def forward(self, x_t: torch.Tensor, t, cond: torch.Tensor) -> torch.Tensor:
        return cond[:, self.fill] + self.net(x_t, t, cond)


def _fill_network(spec: dict) -> nn.Module:
    """The frozen restorer of ``refine={"name": "FFCUNet", ...}``: a mask-guided network of ``murallab.nn``, built
    with untrained weights; its trained ones come with the diffusion model's own ``state_dict``."""
    cls = getattr(networks, str(spec.get("name")), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and getattr(cls, "task", None) == "guided"):
        raise ValueError(f"refine={spec!r} must name a mask-guided network of murallab.nn (UNet, PConvUNet or "
                         f"FFCUNet) with its arguments")
    net = cls(**{k: v for k, v in spec.items() if k != "name"})
    net.requires_grad_(False)
    return net.eval()


class DiffusionRestorer(nn.Module):
    """A mask-conditioned diffusion restorer at one scale, or DiffuMural-lite across several.

    Args:
        scales: patch sizes, coarsest first; the last is the size it restores (a tile of ``murallab.restore``).
            One scale: a mask-conditioned model; two or more: coarse-to-fine co-diffusion.
        base, mults, attention: each scale's :class:`TimeUNet`.
        prediction: what the networks predict, "x0" (default), "eps" or "v" (``schedule.py``).
        schedule, num_steps: the noise schedule, "cosine" or "linear", with T steps.
        cond_drop: the fraction of training samples whose condition is hidden (their mask set to zeros); 1 makes
            an *unconditional* model, which restores only with ``sampler="repaint"`` (the known pixels pasted).
        refine: condition on a fill instead of zeros in the holes, and predict a correction to it (needs
            ``prediction="x0"``): ``True`` for the push-pull fill, or a mask-guided restorer's architecture
            (``{"name": "FFCUNet", "base": 24, "blocks": 4}``) whose fill is used instead. That network is frozen
            (run without gradients, BatchNorm in eval mode) and its weights are part of this model's
            ``state_dict``; ``murallab.models.build_model`` starts it from a checkpoint when a config names one
            (``refine: pretrained:restorer-small``). The diffusion then only learns what a one-pass restorer
            cannot: a *sample* with texture, not the mean (the "predict and refine" of Whang et al., CVPR 2022).
        coarse_noise: in training, the teacher-forced coarse condition of each finer scale gets Gaussian noise of a
            standard deviation drawn in [0, coarse_noise] per sample (Ho et al.'s conditioning augmentation), so
            the finer network does not learn to copy it: at sampling it is a coarse *sample*, with errors.
        coarse_steps: instead of the true coarse image (teacher forcing), condition each finer scale on the coarser
            networks' own DDIM sample in 1 to ``coarse_steps`` calls (drawn per batch; no gradient; validation uses
            ``coarse_steps``), so in training the finer network meets the errors it will meet at sampling and learns
            how far to trust its coarse condition (exposure bias; 0 = teacher forcing).
        input_noise: in training, x_t is drawn with the noise ε + γ·ξ (ξ fresh Gaussian noise, γ =
            ``input_noise``) while the target stays that of ε (Ning et al. 2023, "Input perturbation reduces
            exposure bias"): at sampling, x_t carries the errors of the steps before it, and a network trained only
            on exact x_t lets them grow step by step. 0 trains on the forward process exactly.
    Shapes: ``forward(image (B, 3, S, S) in [0, 1], mask (B, 1, S, S), 1 = known)`` with S = ``scales[-1]``.
    """

    task = "diffusion"

    def __init__(self, scales=(64,), base: int = 32, mults=(1, 2, 2), attention: bool = True,
                 prediction: str = "x0", schedule: str = "cosine", num_steps: int = 1000, cond_drop: float = 0.1,
                 refine: bool | dict = False, coarse_noise: float = 0.0, coarse_steps: int = 0,
                 input_noise: float = 0.0):
        super().__init__()
        scales = [int(s) for s in scales]
        _check_prediction(prediction)
        factor = 2 ** (len(mults) - 1)
        if not scales or any(s % factor for s in scales) or scales != sorted(set(scales)) or \
                any(b % a for a, b in zip(scales, scales[1:])):
            raise ValueError(f"scales must be increasing sizes, each a multiple of {factor} and of the one before, "
                             f"e.g. [64] or [32, 64]; got {scales}")
        if not 0 <= cond_drop <= 1:
            raise ValueError(f"cond_drop must be in [0, 1] (1: an unconditional model), got {cond_drop}")
        if refine and cond_drop == 1:
            raise ValueError("refine corrects a fill of the known pixels, which an unconditional model (cond_drop=1) "
                             "never sees: set refine=False")
        if coarse_steps < 0 or (coarse_steps and len(scales) == 1):
            raise ValueError(f"coarse_steps samples the coarser scale of a multi-scale model: an int >= 0 with two or "
                             f"more scales, got {coarse_steps} with scales {scales}")
        if not 0 <= input_noise < 1:
            raise ValueError(f"input_noise is the extra noise's scale γ, in [0, 1) (Ning et al. use 0.1); "
                             f"got {input_noise}")
        if refine and prediction != "x0":
            raise ValueError(f"refine=True corrects a fill of x0, so it needs prediction='x0', got {prediction!r}")
        if isinstance(refine, str):
            raise ValueError(f"refine={refine!r} names a checkpoint: build the model with murallab.models.build_model, "
                             f"which loads that restorer's weights (DiffusionRestorer takes its architecture, a dict)")
        if schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule must be 'cosine' or 'linear', got {schedule!r}")
        self.scales, self.size, self.prediction, self.cond_drop = scales, scales[-1], prediction, cond_drop
        self.factor = factor  # the networks' total stride: a one-scale model samples multiples of it
        self.schedule = getattr(NoiseSchedule, schedule)(num_steps)
        cond_channels = 4 if len(scales) == 1 else 8
        nets = [TimeUNet(cond_channels=cond_channels, base=base, mults=mults, attention=attention,
                         prediction=prediction) for _ in scales]
        self.refine, self.coarse_noise, self.coarse_steps = refine, coarse_noise, int(coarse_steps)
        self.input_noise = float(input_noise)
        self._fill = slice(0, 3) if len(scales) == 1 else slice(3, 6)  # the masked image's channels in the condition
        self.nets = nn.ModuleList(FillCorrection(n, self._fill) if refine else n for n in nets)
        self.fill_net = _fill_network(refine) if isinstance(refine, dict) else None

    def train(self, mode: bool = True) -> DiffusionRestorer:
        """As ``nn.Module.train``, but a frozen ``fill_net`` stays in eval mode (its BatchNorm statistics fixed)."""
        super().train(mode)
        if self.fill_net is not None:
            self.fill_net.eval()
        return self

    def condition(self, known: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor | None = None) -> torch.Tensor:
        """One scale's condition: ``mask_condition`` (one scale) or ``scale_condition`` (several; ``coarse`` is the
        coarser result in [0, 1]); with ``refine`` the holes of its masked image hold the fill (push-pull, or the
        frozen ``fill_net``'s). A sample with an all-zero mask (nothing known) gets all zeros either way."""
        cond = mask_condition(known, mask) if len(self.scales) == 1 else scale_condition(known, mask, coarse)
        if self.fill_net is not None:
            anything_known = mask.to(known.dtype).flatten(1).amax(1).view(-1, 1, 1, 1)
            cond[:, self._fill] = to_diffusion(self.fill(known, mask)) * anything_known
        elif self.refine:
            cond[:, self._fill] = push_pull(cond[:, self._fill], mask)
        return cond

    @torch.no_grad()
    def fill(self, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fill the networks correct, ``(B, 3, H, W)`` in [0, 1], known pixels exactly ``known``: the frozen
        ``fill_net``'s restoration (``refine`` a restorer's architecture) or push-pull's (``refine=True``)."""
        mask = mask.to(known.dtype)
        if self.fill_net is None:
            return push_pull(known * mask, mask)
        return composite(known, mask, self.fill_net(known * mask, mask).float().clamp(0, 1))

    # -- the trainer's calling convention (murallab.nn.blocks.EncoderDecoder) --------------------------------------
    def inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image, mask)``: the clean image is the training target; the condition keeps only its known pixels."""
        return batch["image"], batch["mask"]

    def restored(self, output: list[dict], batch: dict) -> torch.Tensor:
        """The one-step estimate x̂_0 of the finest scale, composited with the batch's known pixels."""
        return composite(batch["image"], batch["mask"], from_diffusion(output[-1]["x0_hat"].float()))

    def encoder_parameters(self):
        """The networks' input convolutions and down paths (for ``Phase(train="decoder")``)."""
        for net in self.nets:
            net = net.net if isinstance(net, FillCorrection) else net
            yield from net.inp.parameters()
            yield from net.down.parameters()
            yield from net.downsample.parameters()

    def freeze_encoder_bn(self, freeze: bool = True) -> DiffusionRestorer:
        """Nothing to freeze: the networks use GroupNorm, which keeps no batch statistics."""
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[dict]:
        """One noised step per scale: ``[{"pred", "target", "mask", "x0_hat", "x0"}, ...]``, coarsest first
        (diffusion space; ``mask`` is the one the condition saw, zeros where it was dropped)."""
        if image.shape[-2:] != (self.size, self.size):
            raise ValueError(f"this model trains on {self.size}x{self.size} patches (scales {self.scales}), got "
                             f"{tuple(image.shape[-2:])}: set the config's data.patch_size to {self.size}")
        g = None if self.training else torch.Generator(device=image.device).manual_seed(0)
        b = image.shape[0]
        mask = mask.to(image.dtype)
        if self.cond_drop == 1:  # an unconditional model never sees the known pixels
            mask = torch.zeros_like(mask)
        elif self.training and self.cond_drop:  # validation scores the conditional model the samplers use
            mask = mask * (torch.rand(b, 1, 1, 1, device=image.device) >= self.cond_drop)
        out = []
        for i, (net, size) in enumerate(zip(self.nets, self.scales)):
            img, m = downsample(image, size), downsample_mask(mask, size)
            coarse = downsample(image, self.scales[i - 1]) if i else None
            if coarse is not None and self.coarse_steps:
                coarse = self._own_coarse(coarse, mask, i)
            elif coarse is not None and self.training and self.coarse_noise:
                sigma = torch.rand(b, 1, 1, 1, device=image.device) * self.coarse_noise
                coarse = (coarse + sigma * torch.randn_like(coarse)).clamp(0, 1)
            cond = self.condition(img, m, coarse)
            x0 = to_diffusion(img)
            t = torch.randint(0, self.schedule.num_steps, (b,), generator=g, device=image.device)
            noise = torch.randn(x0.shape, generator=g, device=image.device, dtype=x0.dtype)
            seen = noise + self.input_noise * torch.randn_like(noise) if self.training and self.input_noise else noise
            x_t = self.schedule.q_sample(x0, t, seen)
            pred = net(x_t, t, cond)
            out.append({"pred": pred, "target": self.schedule.target(x0, noise, t, self.prediction), "mask": m,
                        "x0_hat": self.schedule.split(pred, x_t, t, self.prediction)[1], "x0": x0})
        return out

    @torch.no_grad()
    def _own_coarse(self, coarse: torch.Tensor, mask: torch.Tensor, i: int) -> torch.Tensor:
        """Scale i's coarse condition as at sampling: scales 0..i-1 sampled coarse to fine from ``coarse`` (the true
        image at scale i-1; only its known pixels are used), in 1..``coarse_steps`` DDIM calls each."""
        if self.training:
            steps = int(torch.randint(1, self.coarse_steps + 1, ()))
            seed = int(torch.randint(0, 2 ** 31, ()))
        else:
            steps, seed = self.coarse_steps, 0
        size = self.scales[i - 1]
        return multiscale_sample(list(self.nets[:i]), self.schedule, coarse, downsample_mask(mask, size),
                                 self.scales[:i], steps=steps, seed=seed, condition=self.condition, paste=True)

    # -- restoration ------------------------------------------------------------------------------------------------
    @contextmanager
    def counting_calls(self):
        """``with model.counting_calls() as calls: model.sample(...)``; then ``calls()`` is the number of network
        evaluations, over all scales (for cost tables)."""
        nets = self.nets
        counters = [CallCounter(n) for n in nets]
        self.nets = nn.ModuleList(counters)
        try:
            yield lambda: sum(c.calls for c in counters)
        finally:
            self.nets = nets

    @property
    def default_sampler(self) -> str:
        """"multiscale" for a multi-scale model, "repaint" for an unconditional one, else "ddim"."""
        return "multiscale" if len(self.scales) > 1 else "repaint" if self.cond_drop == 1 else "ddim"

    @torch.no_grad()
    def sample(self, known: torch.Tensor, mask: torch.Tensor, *, sampler: str | None = None, steps: int | list = 50,
               eta: float = 0.0, seed=0, jump_length: int = 10, jump_n_sample: int = 10,
               refine_from: float | None = None, samples: int = 1, stop: float = STOP) -> torch.Tensor:
        """Restore ``known`` ``(B, 3, H, W)`` in [0, 1] where ``mask`` (1 = known) is 0.

        sampler: "ddim" (``steps`` calls, ``eta``), "ddpm" (``steps`` strided ancestral calls), "repaint"
            (the network with its condition hidden, as an unconditional model: ``steps`` inference steps with
            ``jump_length`` and ``jump_n_sample``; ``repaint_plan`` counts the calls) for a one-scale model; and
            "multiscale" (DDIM with ``steps`` calls per scale, or a list of one count per scale, coarse to fine) for
            a model of two or more scales.
            Default: ``default_sampler``; an unconditional model (``cond_drop=1``) samples only with "repaint".
            ``refine_from``: see ``multiscale_sample``.
            DDIM and DDPM paste the known pixels, noised to each step, into x_t (``paste_known``).
        stop: DDIM, DDPM and multi-scale make their last model call at step ``stop``·(T-1) and return its estimate
            x̂_0 (the denoised guess from there) instead of calling the network on down to t = 0. Measured on
            murals from other sources (BENCHMARKS.md, "Murals from other sources"), each call from about 0.5 T
            down adds saturated blobs, and the calls below 0.2 T add no fine detail: where x_t is already most of
            the image, the x0-network copies it with small errors that the next call builds on. Stopping at 0.4 T
            keeps most of a sample's texture and a quarter of the blobs; 0 runs to the clean end.
        samples: the mean of this many samples (seeds ``seed``, ``seed + 1``, ...; ``samples`` times the calls).
            One sample is a draw from the model's posterior: even a perfect model's draw has twice the squared error
            of the posterior mean (3 dB of PSNR), so the mean of a few short samples scores better, and looks
            smoother.
        Returns ``(B, 3, H, W)`` in [0, 1]; known pixels exactly ``known``. The same seed gives the same result.
        """
        if samples > 1:
            if not isinstance(seed, int):
                raise ValueError("samples > 1 needs an int seed (one per sample: seed, seed + 1, ...)")
            kw = dict(sampler=sampler, steps=steps, eta=eta, jump_length=jump_length, jump_n_sample=jump_n_sample,
                      refine_from=refine_from, stop=stop)
            mean = torch.stack([self.sample(known, mask, seed=seed + i, **kw) for i in range(samples)]).mean(0)
            return composite(known, mask.to(known.dtype), mean)
        sampler = sampler or self.default_sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
        if self.cond_drop == 1 and sampler != "repaint":
            raise ValueError(f"this model is unconditional (cond_drop=1): it never saw the known pixels, so it "
                             f"restores only with sampler='repaint', got {sampler!r}")
        if not 0 <= stop < 1:
            raise ValueError(f"stop is the last model call's step as a fraction of T, in [0, 1), got {stop}")
        end = round(stop * (self.schedule.num_steps - 1))
        check_mask(mask, known, max_hole_ratio=1.0)
        mask = mask.to(known.dtype)
        h, w = known.shape[-2:]
        if len(self.scales) > 1:  # multiscale_sample works on squares of the finest size
            if h > self.size or w > self.size:
                raise ValueError(f"this multi-scale model samples {self.size}x{self.size} patches, got {h}x{w}: "
                                 f"restore larger images tile by tile with murallab.restore.restore")
            ph, pw = self.size, self.size
        else:  # any size the U-Net's strides divide
            ph, pw = -(-h // self.factor) * self.factor, -(-w // self.factor) * self.factor
        if (ph, pw) != (h, w):  # pad by repeating the border (known pixels stay known), sample, crop
            pad = (0, pw - w, 0, ph - h)
            out = self.sample(F.pad(known, pad, mode="replicate"), F.pad(mask, pad, mode="replicate"),
                              sampler=sampler, steps=steps, eta=eta, seed=seed, jump_length=jump_length,
                              jump_n_sample=jump_n_sample, refine_from=refine_from, samples=samples, stop=stop)
            return composite(known, mask, out[..., :h, :w])
        if sampler == "multiscale" or len(self.scales) > 1:
            if sampler != "multiscale" or len(self.scales) == 1:
                raise ValueError(f"sampler {sampler!r} needs a " + ("one-scale model (such as pretrained:diffusion-64)"
                                 if sampler != "multiscale" else "multi-scale model (such as pretrained:diffumural-64)")
                                 + f"; this one has scales {self.scales}")
            return multiscale_sample(list(self.nets), self.schedule, known, mask, self.scales, steps=steps, eta=eta,
                                     seed=seed, refine_from=refine_from, condition=self.condition, paste=True,
                                     end=end)
        net = self.nets[0]
        if sampler == "repaint":
            hidden = self.condition(known, torch.zeros_like(mask))  # all zeros: nothing is known
            return repaint(net, self.schedule, known, mask, steps=steps, jump_length=jump_length,
                           jump_n_sample=jump_n_sample, cond=hidden, seed=seed)
        cond = self.condition(known, mask)
        if sampler == "ddpm":
            return ddpm_sample(net, self.schedule, known=known, mask=mask, cond=cond, steps=steps, seed=seed,
                               paste=True, end=end)
        return ddim_sample(net, self.schedule, known=known, mask=mask, cond=cond, steps=steps, eta=eta, seed=seed,
                           paste=True, end=end)
