"""The command line: `glassloop COMMAND ...` and `python -m glassloop COMMAND ...`.

Exit codes: 0 ok, 1 findings or a failed run, 2 bad input (one line on stderr, never a traceback),
130/143 interrupted by SIGINT/SIGTERM. Each command lives in its own module as `main(argv) -> int`; this file
only dispatches and turns a `GlassloopError` into one line. It imports nothing heavy: `glassloop doctor` starts
without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from typing import TextIO

from glassloop.errors import ConfigError, GlassloopError, one_line


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one-line `ConfigError` (exit 2 through `main`), not usage + exit."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{message}; run 'glassloop {self.prog.split()[-1]} --help' for the options")

# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("glassloop.cli.demo", "main", "the ssa workload end to end with the complete recipe"),
    "fit": ("glassloop.cli.fit", "main", "train an MLP on a CSV/Parquet table, with baselines"),
    "resume": ("glassloop.cli.resume", "main", "continue an interrupted run from its latest.pt"),
    "predict": ("glassloop.cli.predict", "main", "predict a table with a run's best.pt"),
    "diagnose": ("glassloop.cli.diagnose", "main", "read a run's learning curves and give advice"),
    "doctor": ("glassloop.cli.doctor", "main", "find training-loop bugs in your own script"),
    "lesson": ("glassloop.cli.lesson", "main", "run the lessons' examples"),
    "sweep": ("glassloop.cli.sweep", "main", "many configurations trained at once"),
    "show-loop": ("glassloop.cli.show_loop", "main", "print the loop glassloop runs"),
    "lr-find": ("glassloop.cli.lr_find", "main", "the learning-rate range test: a suggested LR"),
}


def usage() -> str:
    lines = ["usage: glassloop COMMAND [options]   (glassloop COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    return "\n".join(lines)


class ClosedPipeSafe(io.TextIOBase):
    """stdout that survives a reader closing early (`glassloop diagnose DIR | head -1`): once the pipe is
    closed, further output is dropped instead of raising BrokenPipeError, and the command finishes normally."""

    def __init__(self, stream: TextIO) -> None:
        self.stream: TextIO | None = stream

    def write(self, text: str) -> int:
        if self.stream is not None:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.close_pipe()
        return len(text)

    def flush(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.close_pipe()

    def close_pipe(self) -> None:
        # Point the file descriptor at /dev/null too, so the interpreter's own flush at exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError):
            os.dup2(devnull, self.stream.fileno())
        os.close(devnull)
        self.stream = None

    def isatty(self) -> bool:
        return self.stream is not None and self.stream.isatty()

    def fileno(self) -> int:
        if self.stream is None:
            raise OSError("stdout was closed by its reader")
        return self.stream.fileno()


def main(argv: list[str] | None = None) -> int:
    if not isinstance(sys.stdout, ClosedPipeSafe) and sys.stdout is not None and sys.stdout is sys.__stdout__:
        sys.stdout = ClosedPipeSafe(sys.stdout)
    try:
        code = dispatch(list(sys.argv[1:] if argv is None else argv))
        if code in (130, 143) and argv is None:  # the real process, interrupted and saved: a further Ctrl-C
            quiet_exit()                          # must not break the interpreter's exit
        return code
    finally:
        if isinstance(sys.stdout, ClosedPipeSafe):
            sys.stdout.flush()


def quiet_exit() -> None:
    """After an interrupted run has been saved, ignore further SIGINT/SIGTERM so a second Ctrl-C during the
    interpreter's shutdown (torch's atexit handlers) cannot print a traceback."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, signal.SIG_IGN)


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("--version", "-V"):
        from glassloop import __version__

        print(f"glassloop {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"glassloop: error: unknown command {name!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[name]
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        return int(function(rest) or 0)
    except GlassloopError as error:
        print(f"glassloop {name}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"glassloop {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
