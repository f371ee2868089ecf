"""Trying hard to make epfinder give a wrong answer: racy installs, concurrent starts, faults.

Every check compares epfinder's answer with a plain scan of the same files. The bounded version
runs in CI; set EPFINDER_SOAK_ROUNDS (e.g. 2000) to run the random rounds longer by hand:

    EPFINDER_SOAK_ROUNDS=2000 ./run-tests -k racy -s

Each test prints what it did (rounds, processes, faults, wrong answers) with -s.
"""

import errno
import importlib.metadata as md
import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _epfinder_boot as boot
import epfinder
from epfinder import _cache, _scan
from helpers import EPFINDER_ROOT, _first_difference, child_env, dist_info, full_path, write_tree
from probe import ask_everything

ROUNDS = int(os.environ.get("EPFINDER_SOAK_ROUNDS", "40"))

# One child: the served answer (from the caches earlier children wrote), then the plain one.
ASK = """
import json, sys
sys.path[:0] = {paths!r}
sys.path.append({root!r})
import epfinder
import importlib.metadata as md
def outcome(fn):
    # The value, or the exception a caller gets (3.15 raises MetadataNotFound for a *.dist-info
    # whose METADATA is not written yet, where 3.14 returned None with a DeprecationWarning).
    try:
        return fn()
    except Exception as exc:
        return ["raise", type(exc).__name__, str(exc)]
def ask():
    return {{
        "dists": [(outcome(lambda: d.name), outcome(lambda: d.version)) for d in md.distributions()],
        "eps": sorted((e.group, e.name, e.value) for e in md.entry_points(group="g")),
        "versions": {{n: (lambda n: (lambda: md.version(n)))(n)() if n in {{d.name for d in md.distributions()}} else None
                     for n in {names!r}}},
    }}
epfinder.enable({mode!r})
served = ask()
epfinder.disable()
print(json.dumps([served, ask()]))
"""


def ask(tmp_path, paths, mode="auto", names=(), **env):
    code = ASK.format(paths=[str(p) for p in paths], root=EPFINDER_ROOT, mode=mode, names=list(names))
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          env=child_env(tmp_path, **env), timeout=120)
    assert proc.returncode == 0, proc.stderr
    served, plain = json.loads(proc.stdout)
    return served, plain


def report(what, **figures):
    print(f"\n{what}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


# --- 1. racy installs ------------------------------------------------------------------------------


class Site:
    """A site directory that random installer-like operations change."""

    def __init__(self, root, rng):
        self.root = write_tree(root, {})
        os.makedirs(root / _cache.SUBDIR, exist_ok=True)
        self.rng = rng
        self.installed = {}  # name -> version

    def install(self, name, version):
        eps = "".join(f"{name}{i} = {name}:f{i}\n" for i in range(self.rng.randint(0, 3)))
        write_tree(self.root, dist_info(name, version, f"[g]\n{eps}" if eps else None))
        self.installed[name] = version

    def remove(self, name):
        shutil.rmtree(self.root / f"{name}-{self.installed.pop(name)}.dist-info")

    def fresh_name(self):
        # A name not installed: installing over an existing *.dist-info would edit it in place,
        # which auto mode by design does not see (strict does; docs/modes.md).
        while True:
            name = f"p{self.rng.randrange(1000)}"
            if name not in self.installed:
                return name

    def step(self):
        """One random change; returns its name."""
        names = sorted(self.installed)
        kind = self.rng.choice(["add", "add", "remove", "upgrade", "rewrite", "utime", "burst"])
        if kind in ("remove", "upgrade", "rewrite", "utime") and not names:
            kind = "add"
        if kind == "add":
            self.install(self.fresh_name(), "1.0")
        elif kind == "remove":
            self.remove(self.rng.choice(names))
        elif kind == "upgrade":
            name = self.rng.choice(names)
            old = self.installed[name]
            self.remove(name)
            self.install(name, f"{float(old) + 1:.1f}")
        elif kind == "rewrite":  # as pip reinstalls: the folder goes, a new one comes
            name = self.rng.choice(names)
            version = self.installed[name]
            self.remove(name)
            self.install(name, version)
        elif kind == "utime":  # a change whose mtime is then put back, as tar or rsync do
            st = os.stat(self.root)
            self.remove(self.rng.choice(names))
            os.utime(self.root, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:  # several changes in a row, well inside one timestamp tick of a coarse filesystem
            for _ in range(3):
                self.install(self.fresh_name(), "1.0")
        return kind


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_random_racy_installs_never_give_a_wrong_answer(tmp_path, mode):
    rng = random.Random(f"racy-{mode}")
    site = Site(tmp_path / "site", rng)
    for i in range(5):
        site.install(f"base{i}", "1.0")
    wrong, kinds = 0, {}
    for round_ in range(ROUNDS):
        kind = site.step()
        kinds[kind] = kinds.get(kind, 0) + 1
        served, plain = ask(tmp_path, [site.root], mode, names=sorted(site.installed)[:3])
        wrong += served != plain
        assert served == plain, f"round {round_}, after {kind}: {_first_difference(plain, served)}"
    report(f"racy installs ({mode})", rounds=ROUNDS, processes=ROUNDS, operations=kinds, wrong=wrong)


def test_a_writer_racing_the_readers(tmp_path):
    # A writer lays out distributions file by file, as an installer does, while fresh interpreters
    # keep querying. Whatever they saw on the way, the first query
    # after the writer finishes must see everything.
    site = write_tree(tmp_path / "site", dist_info("seed", "1.0", "[g]\nseed = seed:f\n"))
    os.makedirs(site / _cache.SUBDIR, exist_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", f"""
import os, time
root = {str(site)!r}
for i in range(12):
    folder = os.path.join(root, f"w{{i}}-1.0.dist-info")
    os.mkdir(folder)
    for name, text in (("METADATA", f"Name: w{{i}}\\nVersion: 1.0\\n"), ("entry_points.txt", f"[g]\\nw{{i}} = w:f\\n"),
                       ("RECORD", "")):
        time.sleep(0.03)
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
"""])
    readers = 0
    while writer.poll() is None:
        ask(tmp_path, [site], "auto")
        readers += 1
    served, plain = ask(tmp_path, [site], "auto")
    assert served == plain and len(served["eps"]) == 13
    served_later, _ = ask(tmp_path, [site], "auto")
    assert served_later == plain
    report("writer racing readers", readers=readers + 2, wrong=0)


# --- 2. concurrent starts ----------------------------------------------------------------------------


def test_32_interpreters_at_once_on_missing_and_stale_caches(tmp_path):
    sites = []
    for k in range(3):
        files = {}
        for i in range(40):
            files.update(dist_info(f"s{k}x{i}", "1.0", f"[g]\ns{k}x{i} = m:f\n"))
        sites.append(write_tree(tmp_path / f"site{k}", files))
        os.makedirs(sites[-1] / _cache.SUBDIR, exist_ok=True)
    _, expected = ask(tmp_path, sites)
    # One directory with a stale cache, the others with none.
    ask(tmp_path, sites[:1])
    write_tree(sites[0], dist_info("late", "1.0", "[g]\nlate = m:f\n"))
    expected["dists"].insert(0, ["late", "1.0"])
    expected["eps"] = sorted(expected["eps"] + [["g", "late", "m:f"]])
    code = ASK.format(paths=[str(s) for s in sites], root=EPFINDER_ROOT, mode="auto", names=[])
    children = [subprocess.Popen([sys.executable, "-S", "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=child_env(tmp_path))
                for _ in range(32)]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0 and err == "", err
        served, plain = json.loads(out)
        assert served == plain
        assert sorted(map(tuple, served["dists"])) == sorted(map(tuple, expected["dists"]))
    for site in sites:
        cache = _cache.load(str(site))
        assert cache is not None and cache.signature == boot.dir_signature(os.stat(site)), "fresh"
        assert not [f for f in os.listdir(site / _cache.SUBDIR) if f.startswith(".tmp-")]
    report("concurrent starts", processes=32, wrong=0)


def test_two_refreshes_at_once(tmp_path):
    files = {}
    for i in range(200):
        files.update(dist_info(f"r{i}", "1.0", f"[g]\nr{i} = m:f\n"))
    site = write_tree(tmp_path / "site", files)
    env = child_env(tmp_path, PYTHONPATH=EPFINDER_ROOT)
    cmd = [sys.executable, "-m", "epfinder", "refresh", str(site)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and err == "", err
    assert _cache.load(str(site)).count == 200
    served, plain = ask(tmp_path, [site])
    assert served == plain


# --- 3 and 4. faults while writing and reading --------------------------------------------------------


def outcome(fn):
    """The value, or the exception's type and message: where 3.14 returned None with a
    DeprecationWarning for a distribution without readable metadata, 3.15 raises MetadataNotFound
    (or KeyError for a missing field); both sides must give the same."""
    try:
        return fn()
    except Exception as exc:
        return ("raise", type(exc).__name__, str(exc))


def answers(site):
    return [(outcome(lambda: d.name), outcome(lambda: d.version), sorted(e.name for e in d.entry_points))
            for d in md.distributions(path=[str(site)])]


def plain_answers(site):
    epfinder.disable()
    try:
        return answers(site)
    finally:
        epfinder.enable("auto")


def small_site(tmp_path):
    site = write_tree(tmp_path / "site", {
        **dist_info("alpha", "1.0", "[g]\na = m:a\n"), **dist_info("beta", "2.0", "[g]\nb = m:b\n")})
    os.makedirs(site / _cache.SUBDIR, exist_ok=True)
    time.sleep(0.05)  # past the timestamp tick of these writes (coarse kernel clocks), so the scan may be cached
    return site


def leftovers(*folders):
    return [f for folder in folders if os.path.isdir(folder) for f in os.listdir(folder) if f.startswith(".tmp-")]


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EIO])
def test_a_write_that_fails_leaves_nothing_half_written(tmp_path, served, monkeypatch, fault):
    site = small_site(tmp_path)
    real_write, real_replace = os.write, os.replace
    injected = []

    def failing_write(fd, data):
        if ".tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
            real_write(fd, bytes(data)[: len(data) // 2])  # a partial write, then the failure
            injected.append(fd)
            raise OSError(fault, os.strerror(fault))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    assert answers(site) == plain_answers(site)
    monkeypatch.setattr(os, "write", real_write)
    assert injected, "the fault was injected"
    assert not os.path.exists(_cache.in_directory_file(str(site)))
    assert leftovers(site / _cache.SUBDIR, _cache.user_cache_root()) == []

    def failing_replace(src, dst, **kwargs):  # src_dir_fd, dst_dir_fd: epfinder._startup_atomic renames in its folder
        injected.append(dst)
        raise OSError(fault, os.strerror(fault))

    _cache.invalidate()
    monkeypatch.setattr(os, "replace", failing_replace)
    assert answers(site) == plain_answers(site)
    monkeypatch.setattr(os, "replace", real_replace)
    assert leftovers(site / _cache.SUBDIR, _cache.user_cache_root()) == []
    _cache.invalidate()
    assert answers(site) == plain_answers(site)
    assert os.path.exists(_cache.in_directory_file(str(site))), "written once the fault is gone"


def test_no_place_to_write_a_cache(tmp_path, served, monkeypatch):
    site = write_tree(tmp_path / "site", dist_info("alpha", "1.0", "[g]\na = m:a\n"))
    (site / _cache.SUBDIR).write_text("a file where the folder would be")
    (tmp_path / "xdg-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-file"))  # a file, not a folder
    for _ in range(2):
        _cache.invalidate()
        assert answers(site) == plain_answers(site) == [("alpha", "1.0", ["a"])]


def test_read_only_directory(tmp_path, served, monkeypatch):
    # Root ignores permission bits, so the refusal is injected where the cache would be created.
    site = small_site(tmp_path)
    real_open = os.open

    def read_only(path, flags, *args, dir_fd=None, **kwargs):
        if flags & os.O_CREAT and full_path(path, dir_fd).startswith(str(site)):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, dir_fd=dir_fd, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert answers(site) == plain_answers(site)
    time.sleep(_cache.WALL_CLOCK_MARGIN_NS / 1e9)  # per-user files take the wall clock's 3 s margin
    _cache.invalidate()
    assert answers(site) == plain_answers(site)
    assert os.listdir(site / _cache.SUBDIR) == []
    assert [f for f in os.listdir(_cache.user_cache_root()) if f.endswith(".jsonl")], "per-user cache"
    assert leftovers(_cache.user_cache_root()) == []


def test_unreadable_metadata(tmp_path, served, monkeypatch):
    site = small_site(tmp_path)
    real_open = open
    import builtins

    def guarded(file, *args, **kwargs):
        if str(file).endswith(os.path.join("beta-2.0.dist-info", "METADATA")):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    import io
    monkeypatch.setattr(io, "open", guarded)
    served_answer, plain = answers(site), plain_answers(site)
    assert served_answer == plain


def test_a_distribution_deleted_between_listing_and_reading(tmp_path, served, monkeypatch):
    site = small_site(tmp_path)
    real_read = _scan.read_distribution
    deleted = []

    def racing(root, child, *rest):
        if child.startswith("beta") and not deleted:
            shutil.rmtree(os.path.join(root, child))
            deleted.append(child)
        return real_read(root, child, *rest)

    monkeypatch.setattr(_scan, "read_distribution", racing)
    answers(site)  # whatever it saw mid-race, it must not be written down
    monkeypatch.setattr(_scan, "read_distribution", real_read)
    assert deleted
    cache = _cache.load(str(site))
    assert cache is None or "beta-2.0.dist-info" not in [cache.entry(i) for i in range(cache.count)]
    _cache.invalidate()
    assert answers(site) == plain_answers(site) == [("alpha", "1.0", ["a"])]


# --- 5. bad metadata: the same answers, exceptions and warnings as a plain scan -----------------------

BLOBS = st.one_of(
    st.binary(max_size=60),
    st.lists(st.sampled_from(["Name: x", "Version: 1", "name:y", "Version:", "[g]", "[console_scripts]",
                              "a = m:f", "b=", "=c", "junk", "  folded", "# c", "", "\xe9", "\r"]),
             max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a-1.0.dist-info", "A-2.dist-info", "b.egg-info", "c-1.dist-info"]),
                          BLOBS, BLOBS), max_size=3, unique_by=lambda e: e[0]))
def test_random_metadata_gets_the_plain_answers(tmp_path_factory, monkeypatch, entries):
    tmp = tmp_path_factory.mktemp("bad")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    files = {}
    for entry, metadata, eps in entries:
        files[f"{entry}/METADATA"] = metadata
        files[f"{entry}/entry_points.txt"] = eps
    site = write_tree(tmp / "site", files)
    os.makedirs(site / _cache.SUBDIR)
    time.sleep(0.02)  # past the timestamp tick of these writes, so that the scan is cached
    monkeypatch.setattr(sys, "path", [str(site)])
    names = ["a", "b", "c", "x", "y"]
    plain = ask_everything(md, names)
    epfinder.enable("auto")
    try:
        cold = ask_everything(md, names)
        assert os.path.exists(_cache.in_directory_file(str(site)))
        _cache.invalidate()  # the next ask reads the cache file a cold start wrote
        warm = ask_everything(md, names)
    finally:
        epfinder.disable()
    assert cold == plain
    assert warm == plain


# --- real pip, and concurrent starts in a real enabled venv -------------------------------------------

VENV_ASK = """
import json, sys
import importlib.metadata as md
def ask():
    return {"dists": sorted((d.name, d.version) for d in md.distributions()),
            "eps": sorted((e.name, e.value) for e in md.entry_points(group="g"))}
served = ask()
import epfinder
epfinder.disable()
print(json.dumps([sys.modules["_epfinder_boot"].site_dir is not None, served, ask()]))
"""


@pytest.mark.slow
def test_random_pip_rounds_then_32_starts_at_once(venv, tmp_path):
    from helpers import make_wheel, pip, run

    python, site, _ = venv
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    rng = random.Random("pip")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    installed = {}
    rounds = max(4, ROUNDS // 10)
    for _ in range(rounds):
        name = f"rnd{rng.randrange(4)}"
        if name in installed and rng.random() < 0.4:
            pip(python, "uninstall", "-y", name, tmp_path=tmp_path)
            del installed[name]
        else:
            version = f"{installed.get(name, 0) + 1}.0"
            eps = "".join(f"e{i} = {name}:f\n" for i in range(rng.randint(0, 2)))
            wheel = make_wheel(wheels, name, version, f"[g]\n{eps}" if eps else "")
            pip(python, "install", "--no-index", str(wheel), tmp_path=tmp_path)
            installed[name] = int(float(version))
        enabled, served, plain = json.loads(run(python, "-c", VENV_ASK, tmp_path=tmp_path).stdout)
        assert enabled and served == plain
    # Every cache gone or stale, then 32 interpreters at once, through real site processing.
    shutil.rmtree(site / _cache.SUBDIR)
    run(python, "-m", "epfinder", "install", tmp_path=tmp_path)
    (site / _cache.SUBDIR / _cache.FILENAME).unlink()
    (site / _cache.SUBDIR / "startup-v2.tsv").unlink()
    from helpers import clean_env

    children = [subprocess.Popen([python, "-c", VENV_ASK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=clean_env(tmp_path), cwd=tmp_path) for _ in range(32)]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0 and err == "", err
        enabled, served, plain = json.loads(out)
        assert enabled and served == plain
    status = json.loads(run(python, "-m", "epfinder", "status", "--json", tmp_path=tmp_path).stdout)
    (entry,) = [e for e in status["sys_path"] if e["path"] == str(site)]
    assert entry["state"] in ("fresh", "stale")  # stale: changed in the last seconds, not yet rewritten
    assert run(python, "-m", "epfinder", "verify", tmp_path=tmp_path).returncode == 0
    assert not [f for f in os.listdir(site / _cache.SUBDIR) if f.startswith(".tmp-")]
    report("real pip rounds", rounds=rounds, processes=rounds * 3 + 32 + 4, wrong=0)
