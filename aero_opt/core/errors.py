"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class AeroOptError(Exception):
    """A user-facing error (bad input file, bad config key, failed repair...).

    The message must name the offending file or key; the CLI prints ``error: <message>`` and exits with 2.
    """
