"""The ``campaign`` command.

Exit codes: 0 done; 1 the input is invalid (a calendar with problems); 2 a usage error (unknown
calendar, unreadable instant) or a file refused as a whole; 3 the door or entry window is closed.
Messages are Chinese; identifiers and JSON keys are English.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from include.calendar import CalendarError
from include.cli import calendars, door, forms, progress, reminders, rules, store
from include.cli.common import EXIT_INVALID, EXIT_USAGE, UsageError
from include.masking import redact

GROUPS = (calendars, door, reminders, progress, forms, rules, store)
# Added where the devtools package is installed (a checkout, the tests); the production image leaves it out.
DEVELOPMENT_GROUP = "include.devtools.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign", description="扶贫对象动态管理战役：日历、状态库与演示")
    commands = parser.add_subparsers(dest="command", required=True, metavar="命令")
    for group in GROUPS:
        group.register(commands)
    try:
        development = importlib.import_module(DEVELOPMENT_GROUP)
    except ModuleNotFoundError as missing:
        if missing.name not in {"include.devtools", DEVELOPMENT_GROUP}:
            raise
    else:
        development.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"错误：{redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except CalendarError as exc:
        for problem in exc.problems:
            print(problem.line(exc.file), file=sys.stderr)
        return EXIT_INVALID


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
