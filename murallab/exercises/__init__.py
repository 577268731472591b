"""Checks for the notebooks' coding exercises: ``check_...(your_answer)`` says whether your answer is right.

Each check compares your function (or number, or choice) with an independent truth (the library's implementation,
or the same formula computed another way), prints "correct" or "not yet" with a hint about what differs, and
returns True or False. An unfilled blank (``...`` or ``None``) is "not yet", never an error::

    from murallab.exercises import check_partial_conv
    check_partial_conv(my_partial_conv)      # notebook 02

One module per notebook holds its checks (``nb01``, ``nb02``, ...); ``murallab.exercises.solutions.nbNN`` holds
the reference answers, named as the notebook's blanks (each notebook's ``solutions=True`` parameter loads them).
"""

from .nb01 import check_coverage, check_mask_convention, check_walk
from .nb02 import check_layers_to_close, check_naoto_factor, check_partial_conv, check_window_size
from .nb03 import check_gram, check_hole_tv, check_l1_hedge, check_legacy_mse
from .nb04 import check_cosine_lr, check_early_stopping, check_hole_psnr
from .nb05 import check_blind_composite, check_iou, check_precision_recall, check_threshold_choice
from .nb06 import check_ddim_step, check_mean_gain, check_q_sample
from .nb07 import check_bin_means, check_bootstrap_ci

__all__ = ["check_walk", "check_coverage", "check_mask_convention",
           "check_partial_conv", "check_naoto_factor", "check_layers_to_close", "check_window_size",
           "check_hole_tv", "check_gram", "check_l1_hedge", "check_legacy_mse",
           "check_cosine_lr", "check_early_stopping", "check_hole_psnr",
           "check_iou", "check_precision_recall", "check_threshold_choice", "check_blind_composite",
           "check_q_sample", "check_ddim_step", "check_mean_gain", "check_bin_means", "check_bootstrap_ci"]
