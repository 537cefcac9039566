"""The ``ocikit`` command line: click commands and their rendering. Nothing below imports it."""
