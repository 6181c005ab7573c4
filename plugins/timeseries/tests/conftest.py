"""Test settings for this plugin's tests."""

from __future__ import annotations

import os

import torch

# opaque ids are keyed per site: tests use a fixed key and never touch ~/.config
os.environ.setdefault("SSL_DOMAINS_ID_KEY", "ssl-domains-test-key-0123456789")

# tiny test models run faster on one thread (and do not fight parallel test processes)
torch.set_num_threads(1)
