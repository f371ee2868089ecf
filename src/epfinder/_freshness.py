"""Which metadata entries can change without their directory's listing changing.

Shared by the query caches (epfinder._scan) and the start-up hook table (epfinder._startup_table),
which must not import ``re``; so this module imports nothing but ``os``. The rule it implements
is written down for installers in docs/cache-format.md ("Freshness").
"""

import os

# Files that packages_distributions() may read (epfinder._packages): a watched entry records their
# stamps too, so that an in-place rewrite of any of them is seen.
SIDE_INPUTS = ("top_level.txt", "RECORD", "installed-files.txt", "SOURCES.txt")


def is_sealed(entry_path, child):
    """Whether an installer finished this entry and will only ever replace it whole.

    pip, uv and pypa/installer write ``RECORD`` last, and replace a distribution's ``*.dist-info``
    as a whole (a new directory, which changes the site directory's own timestamps). So a
    ``*.dist-info`` that holds ``RECORD`` is complete, and its contents change only together with
    the directory listing. Anything else (an ``*.egg-info`` that setuptools rewrites in place, a
    ``*.dist-info`` still being written, or one whose ``RECORD`` Debian stripped) may change inside.

    Ask before reading the entry's files: a ``RECORD`` that appears later proves nothing about
    what was read before it.
    """
    if not child.endswith(".dist-info"):
        return False
    try:
        os.stat(os.path.join(entry_path, "RECORD"))
    except OSError:
        return False
    return True
