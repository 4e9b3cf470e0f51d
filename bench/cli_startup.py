"""How long the command line takes to answer when it does no work: ``--help`` and a bad option.

Target (issue #11): under 1 s on 2 cores. The CLI imports torch and transformers only inside the
commands that use them, ``import transplant`` loads its API lazily, and the method files (imported
to generate convert's flags and ``transplant methods``) load torch only when they make rows.

    python bench/cli_startup.py            # median of 5 runs each
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "transplant --help": ["--help"],
    "transplant convert --help": ["convert", "--help"],
    "transplant eval --context 1 (an Error line)": ["eval", "MODEL", "--text", "x.txt", "--context", "1"],
    "transplant methods": ["methods"],
    "transplant convert --method fvt --k 3 (an Error line)": ["convert", "M", "T", "-o", "O", "--method", "fvt", "--k", "3"],
    "transplant recipe de --help": ["recipe", "de", "--help"],
}


def main() -> None:
    executable = shutil.which("transplant")
    prefix = [executable] if executable else [sys.executable, "-m", "transplant.cli"]
    print(f"{'command':56s} median s   max s")
    for label, args in COMMANDS.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(prefix + args, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        verdict = "" if max(times) < 1 else "  (over the 1 s target)"
        print(f"{label:56s} {statistics.median(times):8.2f} {max(times):7.2f}{verdict}")


if __name__ == "__main__":
    main()
