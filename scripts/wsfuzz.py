"""The long websocket fuzz run (not in CI): the fuzz tests for 100,000 frames or more.

    .venv/bin/python scripts/wsfuzz.py              # 100,000 frames
    .venv/bin/python scripts/wsfuzz.py --frames 300000

Runs tests/integration/test_ws_fuzz.py (raw frames, and op payloads in both codecs)
against a real server process on loopback, with many more examples and longer streams
than CI. Asserts what the CI run asserts: the server never crashes, every connection
either answers a ping or is closed and is released once its client goes, and the
server's RSS grows by less than the test's limit. Prints the frames sent and the RSS
growth. Bounded: each example's socket has a timeout, and the run has its number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "ECHOHUB_FUZZ_FRAMES": str(args.frames)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
               "-o", "timeout=0", "tests/integration/test_ws_fuzz.py"]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
