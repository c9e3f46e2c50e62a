"""Run a command with its output copied to a log file: `python -m training.runlog LOG -- CMD...`.

The launcher wraps every training command in this so that (a) the output still reaches the
parent's stdout (Dagster's compute log), (b) a failure can quote the log's tail, and (c) SIGINT /
SIGTERM sent to this process (Pipes' `forward_termination`) reach the command. The log ends with
an `[exit code N]` line. Standard library only: it starts in milliseconds. With
`WONDERFORGE_QUIET_RUNS=1` (the demo sets it) the output goes to the log file only.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

EXIT_LINE = re.compile(rb"^\[exit code (-?\d+)\]$")
QUIET_ENV = "WONDERFORGE_QUIET_RUNS"


def run_logged(command: list[str], log_path: str | Path) -> int:
    """Run `command`, teeing stdout + stderr into `log_path` (appended); return its exit code."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def forward(signum, frame):
            if child.poll() is None:
                child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        quiet = os.environ.get(QUIET_ENV, "") not in ("", "0")
        try:
            out = sys.stdout.buffer
            while chunk := child.stdout.read1(1 << 16):
                if not quiet:
                    out.write(chunk)
                    out.flush()
                log.write(chunk)
                log.flush()
            code = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.write(f"\n[exit code {code}]\n".encode())
    return code


def tail(log_path: str | Path, lines: int = 40) -> str:
    """The last `lines` lines of a log (without the exit-code line); '' if there is no log."""
    path = Path(log_path)
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        kept = collections.deque(f, maxlen=lines + 2)
    body = [line.rstrip(b"\r\n") for line in kept if not EXIT_LINE.match(line.strip())]
    while body and not body[-1].strip():
        body.pop()
    return b"\n".join(body[-lines:]).decode("utf-8", errors="replace")


def exit_code(log_path: str | Path) -> int | None:
    """The exit code recorded at the end of a log, None if the command has not finished."""
    path = Path(log_path)
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        for line in reversed(collections.deque(f, maxlen=3)):
            match = EXIT_LINE.match(line.strip())
            if match:
                return int(match.group(1))
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m training.runlog LOG -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return run_logged(argv[2:], argv[0])


if __name__ == "__main__":
    raise SystemExit(main())
