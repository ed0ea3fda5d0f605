"""``python -m include.cli``: the ``campaign`` command."""

from include.cli.main import _entry

_entry()
