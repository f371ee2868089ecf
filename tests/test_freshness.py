"""A change to a directory is seen at once: by the next query in the same process, and by the
next interpreter; a directory changed within one timestamp tick of its scan is never trusted."""

import importlib
import importlib.metadata as md
import os
import sys
import time

import pytest

import _epfinder_boot as boot
import epfinder
from epfinder import _cache, _scan
from helpers import dist_info, write_tree


def site_with(tmp_path, *names):
    files = {}
    for name in names:
        files.update(dist_info(name, "1.0", f"[g]\n{name} = {name}:main\n"))
    site = write_tree(tmp_path / "site", files)
    os.makedirs(site / _cache.SUBDIR, exist_ok=True)
    return site


def names(site):
    return sorted(d.metadata["Name"] for d in md.distributions(path=[str(site)]))


def eps(site):
    # Through the served path: what entry_points() would list for this directory alone.
    return sorted(ep.name for d in md.distributions(path=[str(site)]) for ep in d.entry_points)


def add(site, name):
    write_tree(site, dist_info(name, "1.0", f"[g]\n{name} = {name}:main\n"))


def served_state(site):
    return _cache._states.get(str(site))


def test_install_and_uninstall_seen_by_the_next_query(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    assert names(site) == ["alpha"]
    add(site, "beta")
    assert names(site) == ["alpha", "beta"]
    assert eps(site) == ["alpha", "beta"]
    import shutil

    shutil.rmtree(site / "alpha-1.0.dist-info")
    assert names(site) == ["beta"]


def test_restored_mtime_is_caught_by_ctime(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    assert names(site) == ["alpha"]
    assert served_state(site) is not None, "a directory older than its scan is trusted"
    before = os.stat(site)
    add(site, "beta")
    os.utime(site, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(site).st_mtime_ns == before.st_mtime_ns
    assert names(site) == ["alpha", "beta"]
    # and a fresh interpreter reading the cache file agrees
    _cache.invalidate()
    assert names(site) == ["alpha", "beta"]


@pytest.fixture
def coarse_clock(monkeypatch):
    """Timestamps with whole-second resolution, like FAT or an old kernel's coarse clock."""
    real = boot.timestamps

    def coarse(st):
        m, c = real(st)
        return m - m % 1_000_000_000, c - c % 1_000_000_000

    monkeypatch.setattr(boot, "timestamps", coarse)


def test_change_within_the_same_tick_is_seen(tmp_path, served, coarse_clock):
    # Wait for the start of a second, so that everything below happens inside one tick.
    time.sleep(1 - time.time() % 1 + 0.05)
    site = site_with(tmp_path, "alpha")
    assert names(site) == ["alpha"]
    # Scanned in the same tick as its last change: the scan is answered but not trusted...
    assert served_state(site) is None
    assert not os.path.exists(_cache.in_directory_file(str(site)))
    signature = boot.dir_signature(os.stat(site))
    add(site, "beta")
    # ...so a change that leaves the (coarse) timestamps as they were is still seen.
    assert boot.dir_signature(os.stat(site)) == signature, "the change fell into the same tick"
    assert names(site) == ["alpha", "beta"]
    # Once the tick is over, the next scan is trusted and written.
    time.sleep(1.1)
    assert names(site) == ["alpha", "beta"]
    assert served_state(site) is not None
    assert os.path.exists(_cache.in_directory_file(str(site)))


def test_racy_rule_on_recorded_stamps():
    signature = [1, 2, 1_000, 1_000]
    record = {"stamps": [[".", [1, 3, 10, 900, 900]], ["METADATA", None]]}
    assert _cache._older_than(1_001, signature, [record])
    assert not _cache._older_than(1_000, signature, [record])
    late_file = {"stamps": [[".", [1, 3, 10, 900, 1_500]]]}
    assert not _cache._older_than(1_001, signature, [late_file])


def test_directory_changed_during_the_scan_is_not_trusted(tmp_path, served, monkeypatch):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    real_read = _scan.read_distribution

    def racing_reader(*args):
        add(site, "intruder")  # a writer racing the reader
        return real_read(*args)

    monkeypatch.setattr(_scan, "read_distribution", racing_reader)
    names(site)
    assert served_state(site) is None
    assert not os.path.exists(_cache.in_directory_file(str(site)))
    monkeypatch.setattr(_scan, "read_distribution", real_read)
    time.sleep(0.01)
    assert names(site) == ["alpha", "intruder"]


def test_invalidate_caches_drops_the_in_process_state(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    names(site)
    assert served_state(site) is not None
    importlib.invalidate_caches()
    assert served_state(site) is None


def test_forked_child_starts_without_state(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    names(site)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, b"1" if served_state(site) is None else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert served_state(site) is not None


def test_strict_mode_sees_an_in_place_edit(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    epfinder.enable("strict")
    assert eps(site) == ["alpha"]
    time.sleep(0.01)
    # Appending to entry_points.txt changes neither the directory nor the dist-info's listing.
    with open(site / "alpha-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("extra = alpha:extra\n")
    assert eps(site) == ["alpha", "extra"]
    epfinder.enable("auto")
    _cache.invalidate()
    assert eps(site) == ["alpha", "extra"]


@pytest.fixture
def install_location(monkeypatch):
    """Make the directories given count as site directories (install locations) in this process."""
    def make(*paths):
        monkeypatch.setattr(_cache, "_site_dirs", {os.path.normcase(os.path.abspath(p)) for p in paths})
    return make


def test_auto_mode_sees_an_in_place_edit_outside_install_locations(tmp_path, served):
    # A source tree or PYTHONPATH entry: setuptools rewrites its *.egg-info in place at every
    # `pip install -e .`, and people edit files there. Every entry is watched.
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    assert eps(site) == ["alpha"]
    with open(site / "alpha-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("extra = alpha:extra\n")
    assert eps(site) == ["alpha", "extra"]


def test_auto_mode_watches_unsealed_entries_of_an_install_location(tmp_path, served, install_location):
    site = site_with(tmp_path, "alpha", "beta")
    os.unlink(site / "beta-1.0.dist-info" / "RECORD")  # as Debian ships them
    install_location(site)
    time.sleep(0.01)
    assert eps(site) == ["alpha", "beta"]
    cache = served_state(site)
    assert cache is not None and cache.watched == 1, "only the dist-info without RECORD is watched"
    with open(site / "beta-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("more = beta:more\n")
    assert eps(site) == ["alpha", "beta", "more"]


def test_auto_mode_trusts_a_sealed_dist_info_in_an_install_location(tmp_path, served, install_location):
    """The documented limit of auto: an installer replaces a *.dist-info with RECORD as a whole,
    so an edit inside one in a site directory is not looked for (strict mode looks)."""
    site = site_with(tmp_path, "alpha")
    install_location(site)
    time.sleep(0.01)
    assert eps(site) == ["alpha"]
    with open(site / "alpha-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("extra = alpha:extra\n")
    assert eps(site) == ["alpha"]
    epfinder.enable("strict")
    assert eps(site) == ["alpha", "extra"]


def test_trust_mode_finds_a_name_installed_since(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    time.sleep(0.01)
    epfinder.enable("trust")
    assert names(site) == ["alpha"]
    add(site, "beta")
    assert names(site) == ["alpha"], "trust: the listing comes from the cache unchecked"
    assert [d.version for d in md.distributions(name="beta", path=[str(site)])] == ["1.0"]
    assert names(site) == ["alpha", "beta"]


def test_only_mode_never_scans(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    bare = write_tree(tmp_path / "bare", dist_info("gamma", "1.0"))
    time.sleep(0.01)
    names(site)
    epfinder.enable("only")
    add(site, "beta")
    assert names(site) == ["alpha"]
    assert names(bare) == [], "only: a directory without a cache contributes nothing"
    epfinder.enable("auto")
    assert names(bare) == ["gamma"]


def test_off_is_plain(tmp_path, served):
    site = site_with(tmp_path, "alpha")
    epfinder.enable("off")
    assert epfinder.current_mode() is None
    assert names(site) == ["alpha"]
    assert not os.path.exists(_cache.in_directory_file(str(site)))


@pytest.mark.parametrize("kind", ["random bytes", "no newline, large", "a directory", "wrong path",
                                  "newer version", "truncated", "JSON of the wrong shape",
                                  "wrong shape inside", "a symlink to another directory's cache",
                                  "a dangling symlink", "empty", "deeply nested header", "a FIFO"])
def test_a_bad_cache_file_is_replaced_by_a_scan(tmp_path, served, kind):
    site = site_with(tmp_path, "alpha", "beta")
    time.sleep(0.01)
    assert names(site) == ["alpha", "beta"]
    file = _cache.in_directory_file(str(site))
    good = open(file, "rb").read()
    os.unlink(file)
    if kind == "random bytes":
        open(file, "wb").write(os.urandom(5000))
    elif kind == "no newline, large":
        open(file, "wb").write(b"x" * (40 << 20))
    elif kind == "a directory":
        os.mkdir(file)
    elif kind == "wrong path":
        open(file, "wb").write(good.replace(str(site).encode(), str(tmp_path / "elsewhere").encode(), 1))
    elif kind == "newer version":
        open(file, "wb").write(good.replace(b'"version":1', b'"version":2', 1))
    elif kind == "JSON of the wrong shape":
        open(file, "wb").write(b'["epfinder-cache", 1]\n{}\n')
    elif kind == "wrong shape inside":  # a valid header whose tables hold the wrong types
        header, _, body = good.partition(b"\n")
        open(file, "wb").write(header + b"\n" + body.replace(b'"alpha"', b'12345678', 1))
    elif kind == "a symlink to another directory's cache":
        other = site_with(tmp_path / "other", "gamma")
        time.sleep(0.01)
        names(other)
        os.symlink(_cache.in_directory_file(str(other)), file)
    elif kind == "a dangling symlink":
        os.symlink(tmp_path / "nowhere", file)
    elif kind == "empty":
        open(file, "wb").close()
    elif kind == "deeply nested header":
        open(file, "wb").write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    elif kind == "a FIFO":  # opening one for reading would block until a writer comes
        os.mkfifo(file)
    else:
        open(file, "wb").write(good[: len(good) - 40])
    _cache.invalidate()
    assert names(site) == ["alpha", "beta"]
    assert eps(site) == ["alpha", "beta"]
    assert [d.version for d in md.distributions(name="beta", path=[str(site)])] == ["1.0"]
    # The application API answers the same, and the bad file is replaced by a good one.
    sys.path.insert(0, str(site))
    try:
        assert sorted(ep.name for ep in epfinder.entry_points(group="g")) == ["alpha", "beta"]
        assert epfinder.version("beta") == "1.0"
    finally:
        sys.path.remove(str(site))
    if kind not in ("a directory", "a FIFO", "a symlink to another directory's cache"):
        assert _cache.load(str(site)) is not None, "repaired"


def test_a_distribution_still_being_written_is_seen_once_finished(tmp_path, served, install_location):
    # An installer creates beta-1.0.dist-info/ (which changes the site directory), then writes
    # its files one by one, RECORD last (none of which changes the site directory), however long
    # it pauses in between. A query in between sees a half-written distribution; the finished
    # install must be seen by the next query, in this process and in the next.
    site = site_with(tmp_path, "alpha")
    install_location(site)
    time.sleep(0.01)
    assert eps(site) == ["alpha"]
    folder = site / "beta-1.0.dist-info"
    folder.mkdir()
    (folder / "METADATA").write_text("Metadata-Version: 2.1\nName: beta\nVersion: 1.0\n")
    time.sleep(0.05)  # a later clock tick than the directory's change, even on coarse filesystems
    assert eps(site) == ["alpha"]
    assert served_state(site) is not None and served_state(site).watched == 1
    assert os.path.exists(_cache.in_directory_file(str(site))), "cached, with the entry watched"
    time.sleep(0.05)
    (folder / "entry_points.txt").write_text("[g]\nbeta = beta:main\n")
    assert eps(site) == ["alpha", "beta"]
    (folder / "RECORD").write_text("beta-1.0.dist-info/METADATA,,\n")
    importlib.invalidate_caches()  # a new process: only the file on disk carries over
    assert eps(site) == ["alpha", "beta"]
    time.sleep(0.05)
    assert eps(site) == ["alpha", "beta"]
    assert served_state(site).watched == 0, "sealed once RECORD is there"


def forge(site, tmp_path):
    """A well-formed cache for ``site`` that lists a distribution it does not hold."""
    decoy = site_with(tmp_path / "decoy", "alpha", "beta", "ghost")
    _before, _after, index, records = _scan.scan(str(decoy), install_location=True)
    signature = boot.dir_signature(os.stat(site))
    return _cache.encode(str(site), signature, index, records)


@pytest.mark.parametrize("who", ["world-writable", "another user"])
def test_a_cache_file_others_could_write_is_never_believed(tmp_path, served, who):
    site = site_with(tmp_path, "alpha", "beta")
    file = _cache.in_directory_file(str(site))
    with open(file, "wb") as f:
        f.write(forge(site, tmp_path))
    if who == "world-writable":
        os.chmod(file, 0o666)
    elif os.getuid() == 0:
        os.chown(file, 65534, 65534)
    else:
        pytest.skip("only root can give a file to another user")
    assert names(site) == ["alpha", "beta"], "scanned, not read from the forged file"
    st = os.stat(file)
    assert not st.st_mode & 0o002 and st.st_uid == os.getuid(), "replaced by a trustworthy one"


def test_a_forged_cache_the_owner_wrote_is_the_owners_business(tmp_path, served):
    # The trust model: a cache file its directory's owner wrote is believed, as a .pth file there
    # would be run. This pins that down, so that a change to it is deliberate.
    site = site_with(tmp_path, "alpha", "beta")
    with open(_cache.in_directory_file(str(site)), "wb") as f:
        f.write(forge(site, tmp_path))
    def listed():
        return sorted(d.name for d in md.distributions(path=[str(site)]))

    assert listed() == ["alpha", "beta", "ghost"]
    assert epfinder.enable("strict") and listed() == ["alpha", "beta"], "strict checks each entry"


def test_a_name_query_checks_only_the_distributions_it_finds(tmp_path, served, monkeypatch):
    # Every entry of a folder that is not a site directory is watched (a `pip install --target`
    # folder on PYTHONPATH, say). A search by name must not stat them all, which cost version()
    # more than the plain scan, and must still see an edit inside the one it finds.
    site = site_with(tmp_path, *[f"pkg{i}" for i in range(40)])
    time.sleep(0.01)
    assert len(names(site)) == 40
    assert served_state(site) is not None and served_state(site).watched == 40

    calls = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: calls.append(path) or real_stat(path, *a, **k))
    (found,) = md.distributions(name="pkg7", path=[str(site)])
    assert found.version == "1.0"
    monkeypatch.setattr(os, "stat", real_stat)
    assert len(calls) <= 8, calls  # the folder, and the files of pkg7 alone

    metadata = site / "pkg7-1.0.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 1.0", "Version: 1.1"))
    (found,) = md.distributions(name="pkg7", path=[str(site)])
    assert found.version == "1.1", "an edit inside the watched entry it finds is seen"
    assert [d.version for d in md.distributions(path=[str(site)]) if d.metadata["Name"] == "pkg7"] == ["1.1"]
