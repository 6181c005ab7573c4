"""Wall-clock time of the fast command-line paths (issue 14): ``--help``, ``--version``,
``plugins``, ``list``, ``describe``, and a plugin group's ``--help``, each run as a fresh
``ssl-domains`` process, plus what each imported.

Warm: the component catalog is cached (a first listing built it) and the OS file cache is hot
(one untimed run first). Cold catalog: the cache folder is empty, so the listing imports every
plugin's components once (what the first listing after an install or an edit costs).

    python benchmarks/cli_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["--version"],
    ["plugins"],
    ["list", "backbone"],
    ["describe", "backbone", "resnet_encoder"],
    ["medical", "--help"],
]

PROBE = (
    "import sys\n"
    "sys.argv = ['ssl-domains', *sys.argv[1:]]\n"
    "try:\n"
    "    from ssl_domains.cli import main; main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('torch', 'monai')})\n"
    "sys.stderr.write('HEAVY ' + ','.join(heavy) + '\\n')\n"
)


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """One fresh process running ``ssl-domains ARGS``: (seconds, heavy packages it imported)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    line = [x for x in res.stderr.splitlines() if x.startswith("HEAVY ")]
    return seconds, (line[-1][6:] if line else "?") or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="ssl-domains-cache-"))
    env = {**os.environ, "SSL_DOMAINS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    rows = []
    for args in COMMANDS:
        run(args, env)  # warm-up (the first listing builds the catalog)
        done = [run(args, env) for _ in range(a.repeats)]
        times = [t for t, _ in done]
        heavy = sorted({h for _, h in done})
        rows.append({"command": "ssl-domains " + " ".join(args), "median_s": statistics.median(times),
                     "min_s": min(times), "max_s": max(times), "imports": " / ".join(heavy)})
    cold = []
    for _ in range(a.repeats):  # cold catalog: empty cache folder, the listing builds it
        shutil.rmtree(cache)
        cache.mkdir()
        cold.append(run(["list", "backbone"], env))
    rows.append({"command": "ssl-domains list backbone (cold catalog: cache empty)",
                 "median_s": statistics.median(t for t, _ in cold), "min_s": min(t for t, _ in cold),
                 "max_s": max(t for t, _ in cold), "imports": " / ".join(sorted({h for _, h in cold}))})
    load = os.getloadavg()[0]
    print(f"| command (fresh process, median of {a.repeats}) | median s | min–max s | torch/monai imported |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| `{r['command']}` | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['imports']} |")
    print(f"\nload average at the end: {load:.1f}")
    print(json.dumps(rows))
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
