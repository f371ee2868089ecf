"""Every file epfinder writes, and every folder it writes into, goes through here.

A folder that others can write (a checkout in a shared /tmp, a site-packages set up under a loose
umask) must not let them choose where epfinder's writes land, what they replace, or what they
delete (docs/security.md):

- ``open_dir``: a cache folder (``<dir>/.epfinder-cache``, or the per-user one) is opened with
  ``O_DIRECTORY|O_NOFOLLOW`` and checked on its descriptor: a real directory, owned by root, this
  user or the owner of the directory it sits in, and writable by nobody else. A folder of ours that
  others can write (made by an earlier version under a loose umask) is tightened to 0755; a new
  one is made 0755 whatever the umask.
- ``AtomicFile`` / ``write``: a temporary file with a random name, created relative to that
  descriptor with ``O_CREAT|O_EXCL|O_NOFOLLOW``, set to 0644 with ``fchmod`` whatever the umask,
  written, fsync'ed when asked, then renamed over the final name with ``os.replace`` relative to
  the same descriptor; removed on any failure.
- ``remove`` / ``remove_dir``: unlink by name relative to a checked descriptor.
- ``make_parents``: the missing folders above the per-user cache folder, 0700.

Stdlib only, and nothing from the package: start-up code (epfinder._startup_table) imports it.
"""

import os

DIR_MODE = 0o755
FILE_MODE = 0o644
TEMP_PREFIX = ".tmp-"  # `uninstall` removes leftovers of this name
_EPERM, _EEXIST = 1, 17  # the same on every POSIX system; errno is imported only when needed

_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))
_NEW_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))


def open_dir(folder, create=False, owner=None):
    # type: (str, bool, int | None) -> int
    """A descriptor of the directory ``folder``, checked on the descriptor itself.

    Refused with PermissionError when ``folder`` is a symlink or not a directory, when it is owned
    by someone other than root, this user or ``owner`` (a uid; None: the owner of the directory
    ``folder`` sits in), or when group or others can write it and it is not this user's (one that
    is this user's is tightened to 0755). With ``create``, a missing ``folder`` is made, 0755
    whatever the umask; the directory it sits in must exist. Raises OSError otherwise.
    The caller closes the descriptor.
    """
    made = False
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(folder, 0o700)
            made = True
        except FileExistsError:
            pass  # made meanwhile by someone else: checked below like any other
        fd = os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        import errno  # deferred: start-up code imports this module, and errno only matters here

        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise PermissionError(_EPERM, "not a directory (a symlink?)", folder) from None
        raise
    try:
        st = os.fstat(fd)
        uid = os.getuid()
        if st.st_mode & 0o170000 != 0o040000:
            raise PermissionError(_EPERM, "not a directory", folder)
        if st.st_uid not in (0, uid):
            if owner is None:
                owner = os.stat(os.path.dirname(os.path.normpath(folder))).st_uid
            if st.st_uid != owner:
                raise PermissionError(
                    _EPERM, f"owned by uid {st.st_uid}, not root, this user or the directory's owner", folder)
        if st.st_mode & 0o022 or made:
            if st.st_uid != uid:
                raise PermissionError(_EPERM, "writable by group or others", folder)
            os.fchmod(fd, DIR_MODE)
        return fd
    except BaseException:
        os.close(fd)
        raise


def make_parents(folder, mode=0o700):
    # type: (str, int) -> None
    """Make the missing folders above ``folder`` (not ``folder`` itself), each ``mode`` whatever the
    umask: the parents of the per-user cache folder, which nobody else needs to enter."""
    missing = []
    parent = os.path.dirname(os.path.normpath(folder))
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        above = os.path.dirname(parent)
        if above == parent:
            break
        parent = above
    for path in reversed(missing):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            continue  # made meanwhile: left as it is
        fd = os.open(path, _DIR_FLAGS)  # never a symlink swapped in since
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def make_dir(folder, owner=None):
    # type: (str, int | None) -> None
    """Make ``folder`` if it is missing and check it as open_dir() does (OSError when refused)."""
    os.close(open_dir(folder, create=True, owner=owner))


class AtomicFile:
    """A new file that replaces ``final`` at once on commit(), or leaves no trace.

    ``fd`` is the temporary file's descriptor, open for writing: fstat it for a timestamp taken on
    the target's own filesystem before anything is written. Raises OSError when the folder is
    refused (see open_dir) or the temporary file cannot be made. Use as a context manager, or call
    abort() when not committing.
    """

    def __init__(self, final, create_dir=False, owner=None, mode=FILE_MODE):
        # type: (str, bool, int | None, int) -> None
        folder, self.name = os.path.split(final)
        self.final = final
        self.fd = self.tmp = None
        self.dir_fd = open_dir(folder, create_dir, owner)  # type: int | None
        try:
            for _attempt in range(8):
                tmp = f"{TEMP_PREFIX}{os.urandom(8).hex()}"
                try:
                    self.fd = os.open(tmp, _NEW_FLAGS, 0o600, dir_fd=self.dir_fd)
                except FileExistsError:
                    continue
                self.tmp = tmp
                break
            else:
                raise FileExistsError(_EEXIST, "no free temporary name", folder)
            os.fchmod(self.fd, mode)
        except BaseException:
            self.abort()
            raise

    def write(self, data):
        # type: (bytes) -> None
        # The ignore: self.fd is open until commit() or abort(), which mypy cannot see.
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]  # type: ignore[arg-type]

    def commit(self, data=b"", fsync=False):
        # type: (bytes, bool) -> None
        """Write ``data``, fsync if asked, and rename the file over ``final``; OSError on failure."""
        # The ignores: self.fd and self.tmp are set until commit() or abort(), which mypy cannot see.
        try:
            if data:
                self.write(data)
            if fsync:
                os.fsync(self.fd)  # type: ignore[arg-type]
            os.close(self.fd)  # type: ignore[arg-type]
            self.fd = None
            os.replace(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)  # type: ignore[arg-type]
            self.tmp = None
        finally:
            self.abort()

    def abort(self):
        # type: () -> None
        """Close and remove the temporary file (nothing once committed); idempotent."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp, dir_fd=self.dir_fd)
            except OSError:
                pass
            self.tmp = None
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def __enter__(self):
        # type: () -> AtomicFile
        return self

    def __exit__(self, *exc):
        # type: (*object) -> None
        self.abort()


def write(final, data, fsync=False, create_dir=False, owner=None, mode=FILE_MODE):
    # type: (str, bytes, bool, bool, int | None, int) -> None
    """Replace ``final`` with ``data`` (bytes) atomically; OSError when it cannot be written."""
    AtomicFile(final, create_dir, owner, mode).commit(data, fsync)


def remove(file, owner=None):
    # type: (str, int | None) -> bool
    """Unlink ``file`` if its folder passes open_dir()'s checks; True when removed.

    Never follows a symlinked folder. OSError when the folder is refused; False when ``file``
    or its folder does not exist.
    """
    folder, name = os.path.split(file)
    try:
        fd = open_dir(folder, owner=owner)
    except FileNotFoundError:
        return False
    try:
        os.unlink(name, dir_fd=fd)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


def remove_dir(folder, owner=None):
    # type: (str, int | None) -> bool
    """Remove the leftover temporary files in ``folder``, then ``folder`` itself if it is empty.

    True when removed; False when it does not exist or still holds other files; OSError when it
    is refused (see open_dir).
    """
    try:
        fd = open_dir(folder, owner=owner)
    except FileNotFoundError:
        return False
    try:
        for name in os.listdir(fd):
            if name.startswith(TEMP_PREFIX):
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
    finally:
        os.close(fd)
    try:
        os.rmdir(folder)  # rmdir never follows a symlink
        return True
    except OSError:
        return False
