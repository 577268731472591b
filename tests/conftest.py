"""Shared builders for murallab's tests: tiny fake DLCV-2019 and Kaggle Dunhuang layouts in tmp_path.

The fake files are written with PIL directly (not murallab's own savers), so the dataset tests read
files that murallab did not write. Each builder returns a :class:`FakeLayout` holding the ground truth
(the uint8 arrays written and the boolean hole maps) so tests can check what the datasets load.

Builders are exposed as fixtures (``make_dlcv``, ``make_kaggle``, ``make_mural_folder``) because the
suite runs with ``--import-mode=importlib``, where ``conftest`` cannot be imported by name. So is the one
tolerance rule for comparing two different computations of the same value (``up_to_rounding``, below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from murallab.data import make_mural, random_walk_mask

REPO = Path(__file__).resolve().parents[1]


@dataclass
class FakeLayout:
    """What a builder wrote: the dataset root and, per sample name, its files and true arrays."""
    root: Path
    names: list[str]
    gt: dict[str, Path] = field(default_factory=dict)
    mask: dict[str, Path] = field(default_factory=dict)
    masked: dict[str, Path] = field(default_factory=dict)
    holes: dict[str, np.ndarray] = field(default_factory=dict)  # (H, W) bool, True = hole (before JPEG)


def _uint8(t) -> np.ndarray:
    """(C, H, W) float tensor in [0, 1] -> (H, W, C) uint8, rounded."""
    return np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


def _sample_arrays(i: int, size, hole_ratio, seed: int):
    """Ground truth, hole map and masked image (gt with holes black) of fake sample ``i``."""
    h, w = size
    gt = make_mural(h, w, seed=seed + i)
    known = random_walk_mask(h, w, hole_ratio=hole_ratio, seed=seed + 1000 + i)[0].numpy() > 0.5
    gt8 = _uint8(gt)
    masked8 = (gt8 * known[..., None]).astype(np.uint8)
    return gt8, ~known, masked8


def _write_mask(holes: np.ndarray, path: Path, hole_value: int) -> None:
    """Mask file as JPEG (grey edges): ``hole_value=0`` writes white = valid, 255 writes white = hole."""
    white = ~holes if hole_value == 0 else holes
    Image.fromarray(white.astype(np.uint8) * 255).save(path, quality=90)


def _build(root: Path, paths_of, n: int, size, hole_ratio, hole_value: int, seed: int) -> FakeLayout:
    out = FakeLayout(root=root, names=[f"{i:03d}" for i in range(n)])
    for i, name in enumerate(out.names):
        gt_path, mask_path, masked_path = paths_of(name)
        for p in (gt_path, mask_path, masked_path):
            if p is not None:
                p.parent.mkdir(parents=True, exist_ok=True)
        gt8, holes, masked8 = _sample_arrays(i, size, hole_ratio, seed)
        if gt_path is not None:
            Image.fromarray(gt8).save(gt_path, quality=92)
            out.gt[name] = gt_path
        _write_mask(holes, mask_path, hole_value)
        Image.fromarray(masked8).save(masked_path, quality=92)
        out.mask[name], out.masked[name], out.holes[name] = mask_path, masked_path, holes
    return out


def build_dlcv(root, n: int = 3, size=(48, 64), *, hole_ratio=(0.1, 0.3), hole_value: int = 0,
               split: str = "train", with_gt: bool = True, seed: int = 0) -> FakeLayout:
    """DLCV-2019 ``Data_Challenge2``: ``root/split/NNN_masked.jpg``, ``root/split/NNN_mask.jpg``,
    ``root/split_gt/NNN.jpg``. ``hole_value=255`` writes masks in the opposite (white = hole) convention."""
    root = Path(root)

    def paths_of(name):
        gt = root / f"{split}_gt" / f"{name}.jpg" if with_gt else None
        return gt, root / split / f"{name}_mask.jpg", root / split / f"{name}_masked.jpg"

    return _build(root, paths_of, n, size, hole_ratio, hole_value, seed)


def build_kaggle(root, n: int = 3, size=(48, 64), *, hole_ratio=(0.1, 0.3), hole_value: int = 0,
                 split: str = "train", with_gt: bool = True, seed: int = 0) -> FakeLayout:
    """Kaggle: ``root/split/split_GT/NNN.jpg``, ``root/split/split_mask/NNN_mask.jpg``,
    ``root/split/split_masked/NNN_masked.jpg``."""
    root = Path(root)
    base = root / split

    def paths_of(name):
        gt = base / f"{split}_GT" / f"{name}.jpg" if with_gt else None
        return gt, base / f"{split}_mask" / f"{name}_mask.jpg", base / f"{split}_masked" / f"{name}_masked.jpg"

    return _build(root, paths_of, n, size, hole_ratio, hole_value, seed)


def build_mural_folder(root, sizes=((96, 128), (80, 80)), suffixes=(".png", ".jpg"), seed: int = 0) -> list[Path]:
    """A plain folder of procedural murals, one file per ``(size, suffix)`` pair; returns the paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ((h, w), suffix) in enumerate(zip(sizes, suffixes)):
        p = root / f"mural_{i:02d}{suffix}"
        Image.fromarray(_uint8(make_mural(h, w, seed=seed + i))).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="session")
def make_dlcv():
    """The DLCV layout builder: ``make_dlcv(root, n=3, size=(48, 64), hole_value=0, ...)``."""
    return build_dlcv


@pytest.fixture(scope="session")
def make_kaggle():
    """The Kaggle layout builder: ``make_kaggle(root, n=3, size=(48, 64), hole_value=0, ...)``."""
    return build_kaggle


@pytest.fixture(scope="session")
def make_mural_folder():
    """The plain mural folder builder: ``make_mural_folder(root, sizes=..., suffixes=...)``."""
    return build_mural_folder


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (scripts are run from there)."""
    return REPO


@pytest.fixture
def one_thread():
    """Run a test on one torch thread. Tests of many small tensors ask for it (autouse in tests/losses and
    tests/diffusion): on a busy 2-core machine a second thread only adds synchronisation, and measured up to 50x
    slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- equal up to rounding: the one tolerance rule --------------------------------------------------------------

class UpToRounding:
    """Two *different* computations of one value (a convolution with a fused bias against a convolution and then a
    multiply-add, a vectorised formula against a loop) agree up to rounding, not bit for bit, and which pairs happen
    to be bit-exact depends on the CPU's kernels (DESIGN.md, "Environment facts"). Bit-exactness is asserted only
    where the same computation runs twice, or where values are copied, selected or integer.

    The rule, written once::

        |actual - expected| <= 8 · eps · K · scale

    ``eps`` is the machine epsilon of the coarser of the two dtypes, ``K`` the number of terms summed into one value
    (``C_in·kH·kW`` for a convolution, ``N`` for a mean of ``N`` numbers, 1 for a few elementwise operations) and
    ``scale`` the size of the values, by default ``max(1, max |expected|)``. That is a few ulps per term: a wrong
    formula (a missing window factor, a shifted window, a lost bias) misses by orders of magnitude more.
    """

    ulps = 8

    def atol(self, dtype: torch.dtype, terms: int = 1, scale: float = 1.0) -> float:
        """The absolute tolerance ``8 · eps(dtype) · terms · scale``."""
        return self.ulps * torch.finfo(dtype).eps * terms * scale

    def __call__(self, actual, expected, *, terms: int, scale: float | None = None, what: str = "") -> None:
        """Assert ``actual`` equals ``expected`` (tensors, arrays or numbers of one shape) up to rounding."""
        actual, expected = (torch.as_tensor(v, dtype=torch.float64 if isinstance(v, float) else None)
                            for v in (actual, expected))  # a Python float is a double
        floats = [t.dtype for t in (actual, expected) if t.is_floating_point()]
        if not floats:
            raise TypeError("integer and boolean values are compared exactly (torch.equal), not up to rounding")
        dtype = max(floats, key=lambda d: torch.finfo(d).eps)
        if scale is None:
            scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
        atol = self.atol(dtype, terms, scale)
        rule = (f"{what + ': ' if what else ''}equal up to rounding: |diff| <= 8·eps·K·scale = 8 × "
                f"{torch.finfo(dtype).eps:.3g} ({dtype}) × {terms} × {scale:.3g} = {atol:.3g}")
        torch.testing.assert_close(actual, expected, rtol=0, atol=atol, check_dtype=False,
                                   msg=lambda details: f"{rule}\n{details}")


@pytest.fixture(scope="session")
def up_to_rounding() -> UpToRounding:
    """``up_to_rounding(actual, expected, terms=K)`` asserts ``|actual - expected| <= 8·eps·K·scale`` (see
    :class:`UpToRounding`); ``up_to_rounding.atol(dtype, terms, scale)`` is that tolerance as a number."""
    return UpToRounding()
