"""docs/security.md, case by case: what another local user can plant, and what a startup hook can do.

The numbers are those of the "Safe on a shared machine" rules in docs/security.md. Permission cases
use a real second user (created with useradd, files planted through setpriv/runuser) when the
suite runs as root; otherwise they are skipped with the reason. Every child that could hang on a
FIFO runs with a timeout, so a regression fails instead of hanging the suite.
"""

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

import _epfinder_boot as boot
from epfinder import _startup_atomic, _cache, _cli, _packages, _record, _startup_costs, _startup_table
from helpers import EPFINDER_ROOT, clean_env, dist_info, make_wheel, pip, run, write_tree

OTHER = "epfinder-other"


# --- a second user, and places it can reach ----------------------------------------------------------


@pytest.fixture(scope="module")
def other_user():
    """(uid, gid) of a real second local user; skips unless the suite runs as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to create a second local user and plant files as that user")
    if not shutil.which("useradd") or not (shutil.which("setpriv") or shutil.which("runuser")):
        pytest.skip("needs useradd and setpriv or runuser")
    try:
        entry = pwd.getpwnam(OTHER)
    except KeyError:
        # Kept afterwards (another run may be using it); a system user without a home or a shell.
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER],
                              capture_output=True, text=True)
        try:
            entry = pwd.getpwnam(OTHER)
        except KeyError:
            pytest.skip(f"useradd {OTHER} failed: {proc.stderr.strip()}")
    return entry.pw_uid, entry.pw_gid


def as_user(user, script, check=True):
    """Run a shell script as ``user`` (uid, gid), without root's groups."""
    uid, gid = user
    if shutil.which("setpriv"):
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", "sh", "-c", script]
    else:
        argv = ["runuser", "-u", OTHER, "--", "sh", "-c", script]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def shared(tmp_path):
    """A folder under /tmp that every local user can reach (0755), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="epfinder-shared-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def shared_venv(shared, venv_template):
    """The `venv` fixture's venv, but where a second user can reach its site-packages."""
    template, relative_site, _pristine = venv_template
    target = shared / "venv"
    shutil.copytree(template, target, symlinks=True)
    return str(target / "bin" / "python"), target / relative_site


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def child(args, tmp_path, timeout=30, **env):
    """A child interpreter with a timeout: a hang is a failure, not a stuck suite.

    SIGINT is put back to its default in the child, as in a program started from a terminal: a suite
    run in the background inherits it ignored, and then Python installs no KeyboardInterrupt handler.
    """
    return subprocess.run([*args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(tmp_path, PYTHONDONTWRITEBYTECODE="1", **env), cwd=tmp_path,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


# The mode epfinder is in (None: off), and whether queries still see distributions.
ASK_MODE = ("import sys, importlib.metadata as md; b = sys.modules.get('_epfinder_boot'); "
            "print(b and b.mode, len(list(md.distributions())) > 0)")


# --- the two helpers ------------------------------------------------------------------------------------


def test_open_trusted_checks_the_descriptor_before_reading(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(b"x" * 10)
    good.chmod(0o644)
    assert boot.read_trusted(str(good)) == b"x" * 10
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(good)
    for name, mode in (("group-writable", 0o664), ("world-writable", 0o646)):
        (tmp_path / name).write_bytes(b"x")
        (tmp_path / name).chmod(mode)
    for name in ("fifo", "link", "group-writable", "world-writable"):
        with pytest.raises(OSError):  # never blocks: O_NONBLOCK, and S_ISREG before any read
            boot.read_trusted(str(tmp_path / name))
    with pytest.raises(OSError, match="larger than 9 bytes"):
        boot.read_trusted(str(good), limit=9)


def test_open_trusted_owner_rule_with_a_real_second_user(tmp_path, other_user):
    uid, gid = other_user
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"planted")
    os.chown(theirs, uid, gid)
    with pytest.raises(PermissionError, match=f"owned by uid {uid}"):
        boot.read_trusted(str(theirs))
    with pytest.raises(PermissionError):
        boot.read_trusted(str(theirs), owner=str(tmp_path))  # tmp_path is root's
    os.chown(tmp_path, uid, gid)
    try:
        assert boot.read_trusted(str(theirs), owner=str(tmp_path)) == b"planted", "the directory's owner is trusted"
        assert boot.read_trusted(str(theirs), owner=uid) == b"planted"
    finally:
        os.chown(tmp_path, 0, 0)


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o077])
def test_atomic_writes_are_0644_and_folders_0755_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        folder = tmp_path / ".epfinder-cache"
        _startup_atomic.write(str(folder / "f"), b"data", fsync=True, create_dir=True)
    finally:
        os.umask(old)
    assert (mode_of(folder), mode_of(folder / "f")) == (0o755, 0o644)
    assert (folder / "f").read_bytes() == b"data" and os.listdir(folder) == ["f"]


def test_a_failed_write_leaves_nothing(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "final").mkdir()  # os.replace of a file over a directory fails
    with pytest.raises(OSError):
        _startup_atomic.write(str(folder / "final"), b"data")
    assert os.listdir(folder) == ["final"]


def test_a_planted_symlink_at_the_temporary_name_is_never_followed(shared, other_user, monkeypatch):
    """The random name was guessed (os.urandom is fixed here): O_EXCL|O_NOFOLLOW refuses it, a new one is drawn."""
    folder = shared / ".epfinder-cache"
    folder.mkdir()
    folder.chmod(0o777)  # a folder left world-writable by an earlier version
    victim = shared / "root-only"
    victim.write_text("secret\n")
    victim.chmod(0o600)
    draws = iter([b"\x01" * 8, b"\x02" * 8])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    guessed = folder / (_startup_atomic.TEMP_PREFIX + (b"\x01" * 8).hex())
    as_user(other_user, f"ln -s {victim} {guessed}")
    _startup_atomic.write(str(folder / "config"), b"enabled = 1\n")
    assert victim.read_text() == "secret\n" and mode_of(victim) == 0o600
    assert (folder / "config").read_text() == "enabled = 1\n" and mode_of(folder) == 0o755, "tightened"
    assert os.path.islink(guessed), "the planted link is left alone, not written through"


def test_open_dir_refuses_symlinks_and_other_users_folders(tmp_path, other_user):
    uid, gid = other_user
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(PermissionError):
        _startup_atomic.open_dir(str(tmp_path / "link"))
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, uid, gid)
    with pytest.raises(PermissionError, match=f"owned by uid {uid}"):
        _startup_atomic.write(str(theirs / "f"), b"x")
    os.chown(tmp_path, uid, gid)  # now the owner of the directory it sits in: trusted ...
    try:
        _startup_atomic.write(str(theirs / "f"), b"x")
        theirs.chmod(0o777)  # ... unless others can write it
        with pytest.raises(PermissionError, match="writable by group or others"):
            _startup_atomic.write(str(theirs / "g"), b"x")
    finally:
        os.chown(tmp_path, 0, 0)
    os.chown(theirs, 0, 0)
    _startup_atomic.make_dir(str(theirs))  # root's own loose folder is tightened, not refused
    assert mode_of(theirs) == 0o755 and sorted(os.listdir(theirs)) == ["f"]
    assert not os.listdir(elsewhere)


# --- 1. permissions follow the umask; the config gets the same checks as the caches --------------------


@pytest.mark.slow
@pytest.mark.parametrize("umask", ["000", "002"])
def test_1_install_makes_0755_and_0644_whatever_the_umask(venv, tmp_path, umask):
    python, site, _ = venv
    env = clean_env(tmp_path)
    for command in ("-m epfinder install", "-m epfinder startup disable some:hook",
                    "-c 'import importlib.metadata as md; md.packages_distributions()'"):
        proc = subprocess.run(["sh", "-c", f"umask {umask}; exec {python} {command}"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr
    folder = site / ".epfinder-cache"
    modes = {p.name: mode_of(p) for p in folder.iterdir()}
    assert mode_of(folder) == 0o755
    assert {"config", boot.STARTUP_TABLE, _cache.FILENAME} <= set(modes)
    assert any(name.startswith("top-level-") for name in modes), "the side file of packages_distributions()"
    assert set(modes.values()) == {0o644}, modes


@pytest.mark.slow
def test_1_the_per_user_cache_folder_is_0755_whatever_the_umask(venv, tmp_path):
    python, _, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    # Every sys.path entry that is not a site directory (the stdlib's) is cached per user.
    subprocess.run(["sh", "-c", f"umask 000; exec {python} -c 'import importlib.metadata as md; "
                    "list(md.distributions())'"], env=clean_env(tmp_path), cwd=tmp_path,
                   check=True, timeout=120)
    # <XDG_CACHE_HOME>/epfinder/<installation>/: the parents epfinder makes are 0700, the folder
    # itself 0755 like every cache folder.
    parent = tmp_path / "xdg" / "epfinder"
    [folder] = parent.iterdir()
    assert (mode_of(tmp_path / "xdg"), mode_of(parent), mode_of(folder)) == (0o700, 0o700, 0o755)
    assert {mode_of(p) for p in folder.iterdir()} == {0o644}


@pytest.mark.slow
def test_1_what_another_user_plants_in_a_loose_cache_folder_is_ignored(shared_venv, tmp_path, other_user):
    python, site = shared_venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    folder = site / ".epfinder-cache"
    assert mode_of(folder) == 0o755
    # Another user cannot write there now ...
    assert as_user(other_user, f"touch {folder}/x", check=False).returncode != 0
    # ... but an earlier version, under umask 000, left the folder 0777. The other user swaps root's
    # config for one that switches every query to `only` (no distributions at all).
    folder.chmod(0o777)
    as_user(other_user, f"cd {folder} && printf 'enabled = 1\\nmode = only\\n' > c && mv -f c config")
    assert os.stat(folder / "config").st_uid == other_user[0]
    for args in ([], ["-I"]):
        proc = child([python, *args, "-c", ASK_MODE], tmp_path)
        assert proc.stdout.split() == ["None", "True"], "the config is ignored: epfinder stays off"
    status = child([python, "-m", "epfinder", "status"], tmp_path).stdout
    assert "is ignored (owned by uid" in status and "not enabled" in status
    # A FIFO as the hook table: every start finishes at once (-I included) and replaces it.
    (folder / "config").unlink()
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    for args in (["-c", ASK_MODE], ["-I", "-c", ASK_MODE], ["-m", "epfinder", "startup", "list"]):
        folder.chmod(0o777)  # each write tightens it again; loosen it for the next plant
        as_user(other_user, f"cd {folder} && mkfifo t && mv -f t {boot.STARTUP_TABLE}")
        proc = child([python, *args], tmp_path, timeout=20)
        assert proc.returncode == 0, proc.stderr
        assert (folder / boot.STARTUP_TABLE).is_file() and mode_of(folder) == 0o755, "rewritten, folder tightened"
    assert child([python, "-c", ASK_MODE], tmp_path).stdout.split() == ["auto", "True"]
    # A FIFO as the config: epfinder stays off, at once.
    folder.chmod(0o777)
    as_user(other_user, f"cd {folder} && mkfifo c && mv -f c config")
    for args in ([], ["-I"]):
        assert child([python, *args, "-c", ASK_MODE], tmp_path, timeout=20).stdout.split() == ["None", "True"]
    # A world-writable config is ignored too, even root's own.
    (folder / "config").unlink()
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    (folder / "config").chmod(0o666)
    assert child([python, "-c", ASK_MODE], tmp_path).stdout.split() == ["None", "True"]
    # install replaces what it cannot trust (nothing of it is kept) and tightens the folder.
    folder.chmod(0o777)
    out = run(python, "-m", "epfinder", "install", tmp_path=tmp_path).stdout
    assert "enabled for" in out and "already" not in out
    assert mode_of(folder) == 0o755 and mode_of(folder / "config") == 0o644
    assert boot.read_config(str(site)) == {"enabled": "1", "mode": "auto"}


# --- 2. temporary files never follow symlinks: one writer for every file -------------------------------


@pytest.mark.slow
def test_2_symlinks_planted_for_upcoming_pids_write_nothing_through(shared_venv, tmp_path, other_user):
    """The attack on `config.tmp-<pid>`: links for the next few hundred pids, then root's startup disable."""
    python, site = shared_venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    folder = site / ".epfinder-cache"
    folder.chmod(0o777)  # left so by an earlier version under umask 000
    victim = Path(tempfile.mkdtemp(dir="/tmp")) / "root-only"
    try:
        victim.write_text("secret\n")
        victim.chmod(0o600)
        last = int(Path("/proc/sys/kernel/ns_last_pid").read_text()) if Path("/proc/sys/kernel/ns_last_pid").exists() else os.getpid()
        links = " ; ".join(f"ln -s {victim} {folder}/config.tmp-{pid}" for pid in range(last, last + 300))
        as_user(other_user, links)
        out = run(python, "-m", "epfinder", "startup", "disable", "some:hook", tmp_path=tmp_path).stdout
        assert "disabled some:hook" in out
        assert victim.read_text() == "secret\n" and mode_of(victim) == 0o600
        config = folder / "config"
        assert not config.is_symlink() and mode_of(config) == 0o644 and os.stat(config).st_uid == 0
        assert "startup.disable.some:hook = 1" in config.read_text()
    finally:
        shutil.rmtree(victim.parent)


@pytest.mark.parametrize("writer", ["config", "hook table", "side file", "cache", "costs file", "RECORD"])
def test_2_each_writer_goes_through_the_helper(tmp_path, monkeypatch, writer):
    """A guessed temporary name holding a symlink is refused (O_EXCL|O_NOFOLLOW) by every writer."""
    folder = tmp_path / ".epfinder-cache"
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (folder / "RECORD").write_text("_epfinder_boot.py,,\n")
    (folder / "RECORD").chmod(0o644)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    time.sleep(0.05)  # the cache is written only when the directory is older than its temporary file
    draws = iter([b"\x07" * 8, b"\x08" * 8])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    (folder / (_startup_atomic.TEMP_PREFIX + (b"\x07" * 8).hex())).symlink_to(victim)
    old = os.umask(0)
    try:
        if writer == "config":
            _cli._write_config(str(tmp_path), {"enabled": "1"})
            written = folder / "config"
        elif writer == "hook table":
            assert _startup_table._Pending(str(folder / boot.STARTUP_TABLE)).commit({})
            written = folder / boot.STARTUP_TABLE
        elif writer == "side file":
            (folder / _cache.FILENAME).write_text("stand-in for the cache file\n")

            class State:
                path, generation, count = str(tmp_path), 1, 0

            _packages._store(State, "tag", [])
            written = folder / "top-level-tag.json"
        elif writer == "cache":
            assert _cache.build(str(tmp_path)).trusted
            written = folder / _cache.FILENAME
        elif writer == "costs file":
            assert _startup_costs.record(str(tmp_path), [("a:b", 1, 2, "ok")])
            written = folder / _startup_costs.FILENAME
        else:
            assert _record._rewrite(str(folder / "RECORD"), lambda line: True, ["x"])
            written = folder / "RECORD"
    finally:
        os.umask(old)
    assert victim.read_text() == "keep\n"
    assert written.is_file() and not written.is_symlink() and mode_of(written) == 0o644


# --- 3. nothing is opened before it is checked; a FIFO never blocks -------------------------------------


QUERY = ("import sys, importlib.metadata as md; sys.path.insert(0, {d!r}); "
         "print(sorted(x.metadata['Name'] for x in md.distributions(path=[{d!r}])))")


def fifo_dir(shared, other_user):
    """A world-writable folder on sys.path (a shared checkout in /tmp) with one distribution."""
    work = shared / "checkout"
    write_tree(work, dist_info("alpha", "1.0"))
    work.chmod(0o777)
    return work


@pytest.mark.slow
def test_3_a_fifo_as_the_cache_of_a_shared_directory_does_not_hang(venv, tmp_path, shared, other_user):
    python, _, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    work = fifo_dir(shared, other_user)
    as_user(other_user, f"mkdir {work}/.epfinder-cache && mkfifo {work}/.epfinder-cache/v2.jsonl")
    proc = child([python, "-c", QUERY.format(d=str(work))], tmp_path, timeout=15)
    assert proc.stdout.strip() == "['alpha']"


@pytest.mark.slow
def test_3_a_fifo_at_the_per_user_cache_location_does_not_hang(venv, tmp_path, shared, other_user):
    python, _, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    work = fifo_dir(shared, other_user)
    xdg = shared / "xdg"
    xdg.mkdir(mode=0o777)
    xdg.chmod(0o777)
    name = Path(_cache.per_user_file(str(work))).name
    as_user(other_user, f"mkdir -p {xdg}/epfinder && mkfifo {xdg}/epfinder/{name}")
    proc = child([python, "-c", QUERY.format(d=str(work))], tmp_path, timeout=15, XDG_CACHE_HOME=str(xdg))
    assert proc.stdout.strip() == "['alpha']"


@pytest.mark.slow
def test_3_a_fifo_as_a_side_file_or_under_status_does_not_hang(venv, tmp_path, shared, other_user):
    python, site, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    # The side file of packages_distributions(), beside site-packages' cache: named by the
    # interpreter's flavour, so the child plants it (as root: no owner could make a FIFO trusted).
    code = textwrap.dedent("""
        import importlib.metadata as md, os, sys
        from epfinder import _cache, _packages
        lib = sys.modules["importlib.metadata"]
        side = _cache.side_file(os.path.join(sys.argv[1], ".epfinder-cache", "v2.jsonl"), _packages.flavour(md, lib))
        if os.path.exists(side):
            os.unlink(side)
        os.mkfifo(side)
        print("pip" in {d for ds in md.packages_distributions().values() for d in ds})
    """)
    proc = child([python, "-c", code, str(site)], tmp_path, timeout=20)
    assert proc.stdout.strip() == "True", proc.stderr
    # status reads every cache of sys.path: a FIFO there is reported, not waited on.
    work = fifo_dir(shared, other_user)
    as_user(other_user, f"mkdir {work}/.epfinder-cache && mkfifo {work}/.epfinder-cache/v2.jsonl")
    proc = child([python, "-m", "epfinder", "status"], tmp_path, timeout=20, PYTHONPATH=str(work))
    assert proc.returncode == 0 and "its cache is not a regular file, so it is ignored" \
        in proc.stdout, proc.stdout


# --- 4. a symlinked or foreign cache folder ----------------------------------------------------------


def planted_link(shared, other_user, root=None):
    """A checkout others can write (in ``root``, default ``shared``) whose .epfinder-cache another
    user made a symlink to a root-only folder."""
    work = fifo_dir(root or shared, other_user)
    victim = shared / "root-only"
    victim.mkdir(mode=0o700)
    for name in (_cache.FILENAME, boot.STARTUP_TABLE, "top-level-x.json", ".tmp-1", "keep"):
        (victim / name).write_text("root's\n")
    as_user(other_user, f"ln -s {victim} {work}/.epfinder-cache")
    return work, victim


@pytest.mark.slow
def test_4_uninstall_deletes_nothing_through_a_symlinked_or_foreign_folder(shared_venv, tmp_path, shared, other_user):
    python, site = shared_venv
    prefix = Path(python).parent.parent  # uninstall cleans the entries inside the environment's prefix
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    work, victim = planted_link(shared, other_user, prefix)
    foreign = prefix / "foreign"
    write_tree(foreign, dist_info("beta", "1.0"))
    foreign.chmod(0o777)
    as_user(other_user, f"mkdir {foreign}/.epfinder-cache && echo theirs > {foreign}/.epfinder-cache/{_cache.FILENAME}")
    before = sorted(os.listdir(victim))
    out = run(python, "-m", "epfinder", "uninstall", tmp_path=tmp_path,
              env=clean_env(tmp_path, PYTHONPATH=f"{work}:{foreign}")).stdout
    assert sorted(os.listdir(victim)) == before
    assert (foreign / ".epfinder-cache" / _cache.FILENAME).exists()
    assert f"kept {work}/.epfinder-cache/: left alone: not a directory (a symlink?)" in out
    assert f"kept {foreign}/.epfinder-cache/: left alone: owned by uid {other_user[0]}" in out
    # The environment's own cache folder, planted as a symlink in a site-packages left writable: an
    # error, and nothing deleted through it.
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    shutil.rmtree(site / ".epfinder-cache")
    site.chmod(0o777)
    as_user(other_user, f"ln -s {victim} {site}/.epfinder-cache")
    proc = run(python, "-m", "epfinder", "uninstall", tmp_path=tmp_path, check=False)
    assert proc.returncode == 1 and "not a directory (a symlink?)" in proc.stderr, proc.stderr
    assert sorted(os.listdir(victim)) == before


@pytest.mark.slow
def test_4_no_cache_is_written_through_a_symlinked_or_foreign_folder(venv, tmp_path, shared, other_user):
    python, _, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    work, victim = planted_link(shared, other_user)
    before = {p.name: p.read_text() for p in victim.iterdir()}
    run(python, "-c", QUERY.format(d=str(work)), tmp_path=tmp_path, env=clean_env(tmp_path))
    run(python, "-m", "epfinder", "refresh", str(work), tmp_path=tmp_path, env=clean_env(tmp_path))
    assert {p.name: p.read_text() for p in victim.iterdir()} == before


# --- 5. -I and -E: no per-user cache location chosen by the environment --------------------------------


@pytest.mark.parametrize("flag", ["-I", "-E"])
def test_5_isolated_interpreters_read_no_cache_the_environment_points_at(tmp_path, flag):
    """A cache planted where XDG_CACHE_HOME or HOME point is believed without -I/-E, ignored with them."""
    site = write_tree(tmp_path / "plugins", dist_info("alpha", "1.0"))
    decoy = write_tree(tmp_path / "decoy", {**dist_info("alpha", "1.0"), **dist_info("ghost", "1.0")})
    from epfinder import _scan

    _before, _after, index, records = _scan.scan(str(decoy))
    forged = _cache.encode(str(site), boot.dir_signature(os.stat(site)), index, records)
    code = (f"import sys; sys.path[:0] = [{EPFINDER_ROOT!r}, {str(site)!r}]; import epfinder, importlib.metadata as md; "
            "from epfinder import _cache; epfinder.enable('only'); "
            f"print(_cache.user_cache_root()); print(sorted(d.name for d in md.distributions(path=[{str(site)!r}])))")
    for variable, planted in (("XDG_CACHE_HOME", tmp_path / "planted-xdg"), ("HOME", tmp_path / "planted-home")):
        env = {"PATH": "/usr/bin:/bin", variable: str(planted)}
        with pytest.MonkeyPatch.context() as mp:  # where the cache of ``site`` is, for that environment
            mp.setenv(variable, str(planted))
            mp.delenv("HOME" if variable == "XDG_CACHE_HOME" else "XDG_CACHE_HOME", raising=False)
            target = Path(_cache.per_user_file(str(site)))
        assert str(target).startswith(str(planted))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(forged)
        plain = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert plain.stdout.splitlines()[1] == "['alpha', 'ghost']", "without -I/-E the variable is honoured"
        isolated = subprocess.run([sys.executable, "-S", flag, "-c", code], env=env, capture_output=True, text=True,
                                  timeout=60)
        root, answer = isolated.stdout.splitlines()
        assert answer == "[]", "only mode: the planted cache is not read, and nothing is scanned"
        assert os.path.dirname(root) == os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".cache", "epfinder")


# --- 6 and 7. startup hooks cannot brick an environment; off means off -------------------------------------


HOOKS = {
    # name: (entry points, module): each misbehaves only when its variable is set.
    "exit-pkg": ("[epfinder.startup]\n100-exit = exit_pkg:run\n",
                 "import os, sys, signal, time\n"
                 "def run():\n"
                 "    how = os.environ.get('HOOK')\n"
                 "    if how == 'exit': sys.exit(3)\n"
                 "    if how == 'interrupt': raise KeyboardInterrupt\n"
                 "    if how == 'sigint':\n"
                 "        os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
                 "    if how == '_exit': os._exit(7)\n"
                 "    if how == 'hang': time.sleep(600)\n"),
    "later-pkg": ("[epfinder.startup]\n900-later = later_pkg:run\n", "def run():\n    print('later ran')\n"),
}
EXIT_LINE = ("epfinder: startup hook exit_pkg:exit (exit-pkg 1.0, exit_pkg:run) {what}; skip it with "
             "EPFINDER_STARTUP_SKIP=exit_pkg:exit or python -m epfinder startup disable exit_pkg:exit")


@pytest.mark.slow
def test_6_7_a_hook_cannot_end_a_start_and_off_runs_no_hook(venv, tmp_path):
    python, site, _ = venv
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pip(python, "install", "--no-index", *[str(make_wheel(wheels, name, "1.0", eps, {f"{name.replace('-', '_')}.py": src}))
                                          for name, (eps, src) in HOOKS.items()], tmp_path=tmp_path)
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)

    def start(*args, timeout=60, **env):
        proc = child([python, *args, "-c", "print(1)"], tmp_path, timeout=timeout, **env)
        return proc.stdout.splitlines(), proc.stderr.splitlines(), proc.returncode

    assert start() == (["later ran", "1"], [], 0)
    # 6. sys.exit() in a hook: one line naming it and the ways to skip it; the start and the other
    # hooks go on, with the exit status of the program.
    assert start(HOOK="exit") == (["later ran", "1"], [EXIT_LINE.format(what="failed: sys.exit(3) ignored")], 0)
    assert start("-I", HOOK="exit")[2] == 0
    proc = child([python, "-m", "pip", "--version"], tmp_path, HOOK="exit")
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1].startswith("pip ")
    # KeyboardInterrupt, raised by the hook or a real Ctrl-C (SIGINT) while it runs, interrupts that
    # hook only: a hook must not be able to stop every start.
    for how in ("interrupt", "sigint"):
        assert start(HOOK=how) == (["later ran", "1"], [EXIT_LINE.format(what="was interrupted (KeyboardInterrupt)")], 0)
    # The epfinder command runs no hook at all, so it works whatever they do: even os._exit or a hang.
    assert start(HOOK="_exit")[2] == 7
    for argv in (["-m", "epfinder"], ["-Im", "epfinder"], ["-mepfinder"], [str(Path(python).parent / "epfinder")]):
        proc = child([python, *argv, "startup", "list"], tmp_path, timeout=30, HOOK="hang")
        assert proc.returncode == 0 and "exit_pkg:exit" in proc.stdout and "later ran" not in proc.stdout, argv
    proc = child([python, "-m", "epfinder", "startup", "disable", "exit_pkg:exit"], tmp_path, HOOK="_exit")
    assert proc.returncode == 0, proc.stderr
    assert start(HOOK="_exit") == (["later ran", "1"], [], 0)
    child([python, "-m", "epfinder", "startup", "enable", "exit_pkg:exit"], tmp_path)

    # 7. EPFINDER_MODE=off: epfinder does nothing in the process, startup hooks included (-I
    # ignores the variable, as every EPFINDER_* one); status says so.
    assert start(EPFINDER_MODE="off") == (["1"], [], 0)
    assert start("-I", EPFINDER_MODE="off")[0] == ["later ran", "1"]
    status = child([python, "-m", "epfinder", "status"], tmp_path, EPFINDER_MODE="off").stdout
    assert "startup hooks: 2 registered; none runs while EPFINDER_MODE=off" in status
    assert "mode off (from EPFINDER_MODE): importlib.metadata scans as usual, and no startup hook runs" in status
    report = json.loads(child([python, "-m", "epfinder", "status", "--json"], tmp_path, EPFINDER_MODE="off").stdout)
    assert report["startup_hooks"]["state"] == "all_off"
    listed = json.loads(child([python, "-m", "epfinder", "startup", "list", "--json"], tmp_path, EPFINDER_MODE="off").stdout)
    assert {(h["state"], h["message"]) for h in listed["hooks"]} == {("all_off", "does not run while EPFINDER_MODE=off")}


def test_6_only_python_m_epfinder_and_the_epfinder_script_count_as_the_command(monkeypatch):
    for argv, orig, expected in [
        (["-m"], ["python", "-m", "epfinder"], True),
        (["-m", "status"], ["python", "-I", "-X", "dev", "-m", "epfinder", "status"], True),
        (["-m", "x"], ["python", "-Imepfinder", "x"], True),
        (["-m"], ["python", "-m", "epfinder.__main__"], True),
        (["/venv/bin/epfinder", "list"], ["python", "/venv/bin/epfinder", "list"], True),
        (["-m", "epfinder"], ["python", "-m", "pip", "epfinder"], False),
        (["-c", "epfinder"], ["python", "-c", "x", "epfinder"], False),
        (["script.py", "-m", "epfinder"], ["python", "script.py", "-m", "epfinder"], False),
        ([""], ["python"], False),
    ]:
        monkeypatch.setattr(sys, "argv", argv)
        monkeypatch.setattr(sys, "orig_argv", orig)
        assert boot.is_epfinder_command() is expected, (argv, orig)


# --- 8. a venv with --system-site-packages never reaches into the base interpreter ------------------------


def fake_base(root, wheel):
    """A base interpreter we may write into: this Python's binary and stdlib, its own empty site-packages."""
    exe = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    stdlib = sysconfig.get_paths()["stdlib"]
    name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(exe, root / "bin" / name)
    lib = root / "lib" / name
    lib.mkdir(parents=True)
    for entry in os.listdir(stdlib):
        if entry not in ("site-packages", "dist-packages"):
            (lib / entry).symlink_to(os.path.join(stdlib, entry))
    python = str(root / "bin" / name)
    out = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    site = Path(out)
    if not str(site).startswith(str(root)):
        pytest.skip(f"this interpreter cannot be relocated for a fake base (site-packages {site})")
    site.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:  # what pip would install, without needing pip in the base
        zf.extractall(site)
    return python, site


def snapshot(folder):
    """Every file under ``folder`` with its mode, size and mtime, and every folder with its mode;
    __pycache__ and the hook table aside.

    The hook table is compared by its entries for the base's own directories (base_hooks): a start
    in a venv that includes the base may add an entry for the venv's site directory to it (see
    docs/security.md), and its temporary file, made before the scan, changes the timestamps of the
    folder it is in even when the table stays as it was. Folders are compared by what they hold.
    """
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), folder)] = (os.lstat(os.path.join(dirpath, name)).st_mode,)
        for name in [f for f in filenames if f != boot.STARTUP_TABLE]:
            st = os.lstat(os.path.join(dirpath, name))
            found[os.path.relpath(os.path.join(dirpath, name), folder)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture
def base_and_venv(tmp_path, epfinder_wheel):
    base_python, base_site = fake_base(tmp_path / "base", epfinder_wheel)
    inner = tmp_path / "inner"
    subprocess.run([base_python, "-m", "venv", "--without-pip", "--system-site-packages", str(inner)],
                   check=True, timeout=120)
    python = str(inner / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                               text=True, check=True).stdout.strip())
    return base_python, base_site, python, site


@pytest.mark.slow
def test_8_install_and_uninstall_in_a_system_site_venv_leave_the_base_alone(base_and_venv, tmp_path, epfinder_wheel):
    base_python, base_site, python, site = base_and_venv
    env = clean_env(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    run(base_python, "-m", "epfinder", "install", tmp_path=tmp_path, env=env)
    assert (base_site / ".epfinder-cache" / "config").exists()
    base = snapshot(base_site)
    table = boot.read_startup_table(str(base_site / ".epfinder-cache" / boot.STARTUP_TABLE))
    base_hooks = table[str(base_site)]

    # epfinder only in the base: the venv cannot switch the base on or off without --base.
    for command in ("install", "uninstall"):
        proc = run(python, "-m", "epfinder", command, tmp_path=tmp_path, env=env, check=False)
        assert proc.returncode == 2 and "outside this virtual environment" in proc.stderr and "--base" in proc.stderr
        assert snapshot(base_site) == base
    proc = run(python, "-m", "epfinder", "uninstall", "--base", tmp_path=tmp_path, env=env)
    assert f"switched off for {base_site}" in proc.stdout and not (base_site / ".epfinder-cache").exists()
    run(python, "-m", "epfinder", "install", "--base", tmp_path=tmp_path, env=env)
    assert (base_site / ".epfinder-cache" / "config").exists()
    base = snapshot(base_site)
    base_hooks = boot.read_startup_table(str(base_site / ".epfinder-cache" / boot.STARTUP_TABLE))[str(base_site)]

    # epfinder in the venv too: install and uninstall there touch the venv's site-packages only.
    with zipfile.ZipFile(epfinder_wheel) as zf:
        zf.extractall(site)
    out = run(python, "-m", "epfinder", "install", tmp_path=tmp_path, env=env).stdout
    assert f"enabled for {site}" in out and str(base_site) not in out
    assert (site / ".epfinder-cache" / "config").exists()
    assert run(python, "-c", ASK_MODE, tmp_path=tmp_path, env=env).stdout.split() == ["auto", "True"]
    out = run(python, "-m", "epfinder", "uninstall", tmp_path=tmp_path, env=env).stdout
    # The base's cache folder is named only as kept (another environment's), never as removed.
    assert [line for line in out.splitlines() if str(base_site) in line] == [
        f"  kept {base_site}/.epfinder-cache/: outside this environment, so other environments may read it"]
    assert not (site / ".epfinder-cache").exists()
    assert snapshot(base_site) == base
    table = boot.read_startup_table(str(base_site / ".epfinder-cache" / boot.STARTUP_TABLE))
    assert table[str(base_site)][:boot.HOOKS + 1] == base_hooks[:boot.HOOKS + 1]
    proc = run(python, "-m", "epfinder", "install", "--base", tmp_path=tmp_path, env=env, check=False)
    assert proc.returncode == 0 and f"for {base_site}" in proc.stdout


@pytest.mark.slow
def test_8_queries_in_a_system_site_venv_write_nothing_into_the_base(base_and_venv, tmp_path, epfinder_wheel):
    base_python, base_site, python, site = base_and_venv
    env = clean_env(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    with zipfile.ZipFile(epfinder_wheel) as zf:
        zf.extractall(site)
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path, env=env)
    base = snapshot(base_site)
    run(python, "-c", ASK_MODE, tmp_path=tmp_path, env=env)
    assert snapshot(base_site) == base
