"""Data: procedural murals, patches, damage masks, file I/O, paired augmentation and datasets.

Conventions: images ``(3, H, W)`` float in [0, 1]; masks ``(1, H, W)`` float with 1 = known, 0 = hole.
"""

from .augment import PairedAugment
from .damage import PaintedDamage, flake_masks, paint_damage, pale_paint, photograph
from .damage_shapes import DamageShapes
from .datasets import (DatasetLayoutError, DLCVDunhuang, KaggleDunhuang, MuralPatchDataset, detect_layout,
                       find_pairs, open_dataset, set_epoch)
from .io import list_images, load_image, load_mask, save_image, save_mask
from .masks import check_mask, composite, hole_ratio, random_walk_mask, random_walk_masks
from .patches import min_spacing, patch_coverage, patch_positions, sample_patches, upscale_to_patch
from .synthetic import PALETTE, make_mural, make_murals

__all__ = [
    "PairedAugment", "DamageShapes", "PaintedDamage", "flake_masks", "paint_damage", "pale_paint", "photograph", "DatasetLayoutError",
    "DLCVDunhuang", "KaggleDunhuang", "MuralPatchDataset", "detect_layout", "find_pairs", "open_dataset", "set_epoch",
    "list_images", "load_image", "load_mask", "save_image", "save_mask",
    "check_mask", "composite", "hole_ratio", "random_walk_mask", "random_walk_masks", "min_spacing", "patch_coverage",
    "patch_positions", "sample_patches", "upscale_to_patch", "PALETTE", "make_mural", "make_murals",
]
