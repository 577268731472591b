"""Paint the damage on a mural photograph and restore it: ``PaintRestore``.

Every method works headless (a script, CI); in JupyterLab ``w.widget`` (or ``w`` as a cell's last line) is the
interactive tool: paint the holes with the mouse, pick a method, restore, save::

    from murallab.widgets import PaintRestore
    w = PaintRestore("wall.jpg")            # a path, a PIL image or a (3, H, W) tensor in [0, 1]
    w.paint(120, 80, 6)                     # a disc of holes: row 120, column 80, radius 6 (image pixels)
    w.detect()                              # or start from the shipped detector's damage map, then edit it
    restored = w.restore("restorer")        # (3, H, W) in [0, 1]; "Telea", "restorer" or "diffusion"
    w.save("wall_restored.png")
    w                                       # the tool (ipycanvas + ipywidgets, the `course` extra)

Masks follow the library convention: ``w.mask`` is ``(1, H, W)`` float, 1 = known, 0 = hole. Large photographs are
shown at most ``display_size`` pixels wide or tall; the mouse paints in image pixels all the same, and ``restore``
tiles the full-resolution image.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .classical import telea
from .data.io import image_from_pil, load_image, save_image
from .data.masks import hole_ratio
from .models import load_model
from .pretrained import PREFIX, WEIGHTS
from .restore import detect as damage_map, restore as restore_image, task_of
from .viz import overlay_mask, show_images

__all__ = ["PaintRestore", "METHODS", "DIFFUSION", "DETECTOR"]

METHODS = ("Telea", "restorer", "diffusion")  # OpenCV Telea, the mask-guided network, DDIM with DIFFUSION
DIFFUSION, DETECTOR = "diffusion-64", "detector"
HOLE_RGBA = (230, 25, 150, 200)  # how a hole is drawn over the photograph in the tool
EXPECTED = "expected a path to an image file, a PIL image or a (3, H, W) float tensor in [0, 1]"


def _as_image(image) -> torch.Tensor:
    """``image`` as a ``(3, H, W)`` float32 CPU tensor in [0, 1]; a one-line ValueError for anything else."""
    if isinstance(image, (str, Path)):
        try:
            return load_image(image)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {image} as an image: {EXPECTED}") from e
    if isinstance(image, Image.Image):
        return image_from_pil(image)  # the conversions load_image makes (greyscale, 16-bit, RGBA onto black)
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"got a {type(image).__name__}: {EXPECTED}")
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"got a tensor of shape {tuple(image.shape)}: {EXPECTED}")
    if not image.is_floating_point():
        raise ValueError(f"got a {image.dtype} tensor: {EXPECTED} (for uint8 use image / 255)")
    lo, hi = float(image.min()), float(image.max())
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"got values in [{lo:.3g}, {hi:.3g}]: {EXPECTED}")
    return image.detach().to("cpu", torch.float32).clone()


class PaintRestore:
    """A photograph, the damage painted on it, and its restoration.

    Args:
        image: a path (read with ``load_image``), a PIL image or a ``(3, H, W)`` float tensor in [0, 1].
        model: the restorer: a mask-guided network (``model(image, mask)``), a diffusion model, or
            ``"pretrained:NAME"`` / a checkpoint path (loaded when first used).
        method: the method ``restore()`` uses by default, one of ``METHODS``.
        radius: the brush radius in image pixels.
        sampling: the diffusion sampler's arguments (default DDIM, 10 model calls, seed 0).
        device: where the networks run.
        display_size: the tool shows the photograph at most this many pixels wide or tall.
    """

    def __init__(self, image, model="pretrained:restorer", *, method: str = "restorer", radius: int = 8,
                 sampling: dict | None = None, device="cpu", display_size: int = 512):
        if isinstance(model, torch.nn.Module) and task_of(model) == "blind":
            raise ValueError(f"model: a {type(model).__name__} finds the damage itself; expected a mask-guided "
                             f"network, a diffusion model or 'pretrained:NAME'")
        if isinstance(model, (str, Path)) and not (str(model).removeprefix(PREFIX) in WEIGHTS
                                                   if str(model).startswith(PREFIX) else Path(model).is_file()):
            raise ValueError(f"model: no such pretrained weights or checkpoint file: {model}; expected a network, "
                             + ", ".join(PREFIX + n for n in WEIGHTS) + " or a checkpoint path")
        self.method = self._check_method(method)
        self.radius, self.device, self.display_size = radius, device, display_size
        self.sampling = {"sampler": "ddim", "steps": 10, "seed": 0, **(sampling or {})}
        self._models = {"restorer": model}
        self._ui = None
        self.load(image)

    def load(self, image) -> None:
        """Start over on another photograph (as ``image`` in the constructor): no holes, no result."""
        self.image = _as_image(image)
        self.path = Path(image) if isinstance(image, (str, Path)) else None
        self.mask = torch.ones(1, *self.image.shape[1:])
        self.result = None
        self._refresh(canvas=True)

    # -- the brush -------------------------------------------------------------------------------------------
    def _stamp(self, y: float, x: float, radius: float | None, value: float) -> None:
        r = self.radius if radius is None else radius
        if not r >= 0:
            raise ValueError(f"radius must be >= 0 pixels, got {r!r}")
        H, W = self.mask.shape[1:]
        y0, y1 = max(0, math.ceil(y - r)), min(H, math.floor(y + r) + 1)
        x0, x1 = max(0, math.ceil(x - r)), min(W, math.floor(x + r) + 1)
        if y0 < y1 and x0 < x1:
            i = torch.arange(y0, y1, dtype=torch.float64)[:, None]
            j = torch.arange(x0, x1, dtype=torch.float64)[None, :]
            self.mask[0, y0:y1, x0:x1][(i - y) ** 2 + (j - x) ** 2 <= r * r] = value
            self.result = None

    def paint(self, y: float, x: float, radius: float | None = None) -> None:
        """Make holes (mask 0) of every pixel ``(i, j)`` with ``(i - y)² + (j - x)² <= radius²`` (image pixels;
        default radius: ``self.radius``)."""
        self._stamp(y, x, radius, 0.0)
        self._refresh()

    def erase(self, y: float, x: float, radius: float | None = None) -> None:
        """Un-paint the same disc: its pixels are known (mask 1) again."""
        self._stamp(y, x, radius, 1.0)
        self._refresh()

    def clear(self) -> None:
        """No holes at all."""
        self.mask.fill_(1.0)
        self.result = None
        self._refresh()

    @property
    def hole_ratio(self) -> float:
        """The fraction of hole pixels, in [0, 1]."""
        return float(hole_ratio(self.mask))

    def detect(self, detector=None, threshold: float | None = None) -> torch.Tensor:
        """Start the mask from a blind network's damage map: holes where P(damage) >= ``threshold``.

        Default: ``pretrained:detector`` at its own threshold (the one its weights carry). Returns ``self.mask``.
        """
        detector = detector if detector is not None else self._model(DETECTOR)
        threshold = detector.threshold if threshold is None else threshold
        self.mask = (damage_map(detector, self.image) < threshold).float()
        self.result = None
        self._refresh()
        return self.mask

    # -- restoring ---------------------------------------------------------------------------------------------
    @staticmethod
    def _check_method(method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        return method

    def _model(self, key: str):
        """The network behind ``key`` ("restorer", the diffusion model, the detector), loaded on first use."""
        spec = self._models.get(key, PREFIX + key)
        if not isinstance(spec, torch.nn.Module):
            self._models[key] = spec = load_model(spec, self.device)[0]
        return spec

    def restore(self, method: str | None = None) -> torch.Tensor:
        """Restore the holes: ``(3, H, W)`` in [0, 1], the known pixels exactly the input's. ``method``: one of
        ``METHODS`` (default ``self.method``); "diffusion" samples ``pretrained:diffusion-64`` with ``sampling``."""
        method = self._check_method(method or self.method)
        if method == "Telea":
            out = telea(self.image, self.mask)
        elif method == "restorer":
            out = restore_image(self._model("restorer"), self.image, self.mask, max_hole_ratio=1.0)
        else:
            out = restore_image(self._model(DIFFUSION), self.image, self.mask, max_hole_ratio=1.0, **self.sampling)
        self.result = out
        self._refresh(result=True)
        return out

    def save(self, path) -> Path:
        """Write the restored image (restoring first if the mask changed) as a PNG file; never over the input."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"{path}: expected a .png path (a lossless file of the restored image)")
        if self.path is not None and (path.resolve() == self.path.resolve()
                                      or path.exists() and os.path.samefile(path, self.path)):
            raise ValueError(f"{path} is the input photograph: choose another file name")
        if self.result is None:
            self.restore()
        save_image(self.result, path)
        return path

    def figure(self):
        """A matplotlib figure: the photograph with its holes tinted, beside the restored image (if any)."""
        images = [overlay_mask(self.image, self.mask)] + ([self.result] if self.result is not None else [])
        return show_images(images, [f"holes {self.hole_ratio:.1%}", "restored"][:len(images)], size=4)

    # -- the interactive tool ---------------------------------------------------------------------------------
    @property
    def widget(self):
        """The tool: a canvas to paint on, the result beside it, and the controls (needs ipycanvas)."""
        if self._ui is None:
            self._ui = _Tool(self)
        return self._ui.box

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _refresh(self, canvas: bool = False, result: bool = False) -> None:
        if self._ui is not None:
            self._ui.refresh(canvas, result)


def _small(image: torch.Tensor, size: tuple[int, int], png: bool = False):
    """A ``(3, H, W)`` image in [0, 1] at ``size`` (H, W): an ``(h, w, 3)`` uint8 array, or PNG bytes."""
    a = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    small = Image.fromarray(a).resize(size[::-1], Image.LANCZOS)
    if not png:
        return np.asarray(small)
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return buf.getvalue()


class _Tool:
    """The widgets of ``PaintRestore.widget``: layer 0 of the canvas holds the photograph, layer 1 the holes."""

    def __init__(self, w: PaintRestore):
        try:
            import ipywidgets as ui
            from ipycanvas import MultiCanvas
        except ImportError as e:
            raise ImportError("the paint-and-restore tool needs ipycanvas and ipywidgets: pip install "
                              "'murallab[course]' (every PaintRestore method works without them)") from e
        self.w, self.last = w, None
        self.canvas = MultiCanvas(2)
        self.result = ui.Image(format="png")
        self.method = ui.Dropdown(options=METHODS, value=w.method, description="method")
        self.radius = ui.IntSlider(value=w.radius, min=1, max=64, description="brush")
        self.mode = ui.ToggleButtons(options=["paint", "erase"])
        self.name = ui.Text(value="restored.png", description="file")
        self.upload = ui.FileUpload(accept="image/*", multiple=False, description="photograph")
        self.status = ui.Label()
        acts = {"restore": lambda: w.restore(self.method.value), "detect": w.detect, "clear": w.clear,
                "save": lambda: setattr(self.status, "value", f"saved {w.save(self.name.value)}")}
        buttons = [ui.Button(description=d) for d in acts]
        for button, act in zip(buttons, acts.values()):
            button.on_click(lambda _, act=act: self.run(act))
        self.method.observe(lambda c: setattr(w, "method", c["new"]), "value")
        self.radius.observe(lambda c: setattr(w, "radius", c["new"]), "value")
        self.upload.observe(lambda c: self.run(self.on_upload), "value")
        self.canvas.on_mouse_down(self.on_down)
        self.canvas.on_mouse_move(self.on_move)
        self.canvas.on_mouse_up(lambda cx, cy: setattr(self, "last", None))
        self.canvas.on_mouse_out(lambda cx, cy: setattr(self, "last", None))
        self.canvas.on_client_ready(lambda: self.refresh(canvas=True))  # a new view starts blank: draw it again
        self.box = ui.VBox([ui.HBox([self.canvas, self.result]),
                            ui.HBox([self.mode, self.radius, self.method]),
                            ui.HBox([*buttons, self.name, self.upload]), self.status])
        self.refresh(canvas=True, result=True)

    def run(self, act) -> None:
        try:
            act()
        except Exception as e:  # a button reports its failure in the tool instead of a lost traceback
            self.status.value = f"{type(e).__name__}: {e}"

    def on_upload(self):
        files = self.upload.value
        if files:
            with tempfile.TemporaryDirectory() as tmp:  # read exactly as a file on disk is read
                path = Path(tmp) / Path(files[0]["name"]).name
                path.write_bytes(bytes(files[0]["content"]))
                self.w.load(load_image(path))

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        return cy / self.scale, cx / self.scale

    def on_down(self, cx, cy):
        self.last = self.to_image(cx, cy)
        self.on_move(cx, cy)

    def on_move(self, cx, cy):
        """Stamp discs along the segment from the last mouse position, no farther apart than half the radius."""
        if self.last is None:
            return
        (y0, x0), (y1, x1), r = self.last, self.to_image(cx, cy), self.w.radius
        value = 0.0 if self.mode.value == "paint" else 1.0
        n = max(1, math.ceil(math.hypot(y1 - y0, x1 - x0) / max(r / 2, 0.5)))
        for k in range(1, n + 1):  # what paint() and erase() do, one redraw for the whole segment
            self.w._stamp(y0 + (y1 - y0) * k / n, x0 + (x1 - x0) * k / n, r, value)
        self.last = (y1, x1)
        self.refresh()

    def refresh(self, canvas: bool = False, result: bool = False) -> None:
        """Redraw the holes (and the photograph, the result when asked) at display size."""
        w = self.w
        H, W = w.image.shape[1:]
        self.scale = min(1.0, w.display_size / max(H, W))
        size = (max(1, round(H * self.scale)), max(1, round(W * self.scale)))
        if canvas:
            self.canvas.height, self.canvas.width = size
            self.canvas[0].put_image_data(_small(w.image, size), 0, 0)
        rows = (torch.arange(size[0]) / self.scale).long().clamp(max=H - 1)
        cols = (torch.arange(size[1]) / self.scale).long().clamp(max=W - 1)
        holes = (w.mask[0][rows][:, cols] == 0).numpy()
        self.canvas[1].clear()
        self.canvas[1].put_image_data(holes[..., None] * np.array(HOLE_RGBA, dtype=np.uint8), 0, 0)
        if canvas or result:
            self.result.value = _small(w.image if w.result is None else w.result, size, png=True)
        self.status.value = f"{H}x{W} px, holes {w.hole_ratio:.1%}" + (", restored" if w.result is not None else "")
