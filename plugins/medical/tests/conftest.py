"""Test settings for this plugin's tests."""

from __future__ import annotations

import torch

# tiny test models run faster on one thread (and do not fight parallel test processes)
torch.set_num_threads(1)
