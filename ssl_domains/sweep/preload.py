"""What the fork server of the jobs' workers imports (:mod:`ssl_domains.sweep.workers`): torch,
the job code and every plugin's components, loaded once, so that each worker forked from the
server starts with them. Imported anywhere else it only loads what a job would."""

from __future__ import annotations

import torch._dynamo  # noqa: F401 - an optimizer's first step imports it: 1 s of CPU a process

import ssl_domains.sweep.jobs  # noqa: F401 - torch, the engine, the sweep
from ssl_domains.plugins import get_host

try:
    get_host().registry  # noqa: B018 - the plugins' modules and components
except Exception:  # noqa: BLE001, S110 - each worker loads them again and reports the error
    pass
