"""User-facing errors.

A :class:`ProblemError` is a mistake the user can fix (a typo in a problem
file, a bad option, a wrong shape).  The CLI prints its message as one line
and exits with code 2; a :class:`StorageError` (disk full, read-only
directory) is one line and exit code 1; everything else is a bug and keeps
its traceback.
"""


class PinnbalError(Exception):
    """A mistake in user input: printed as one line, exit code 2."""


class ProblemError(PinnbalError):
    """The problem definition is invalid (domain, terms, shapes, names)."""


class OptionError(PinnbalError):
    """A command-line or API option is invalid (balancer spec, device, ...)."""


class StorageError(PinnbalError):
    """A file could not be written (disk full, no permission); the previous version of it is intact."""
