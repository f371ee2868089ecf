"""Everything that runs code when this interpreter starts, in the order ``site`` runs it, and who put it there.

``python -m epfinder startup list --all`` shows it: each ``.pth`` file of each site directory (its
path lines and its import lines, with their exact code), PEP 829 ``.start`` entries (3.15+),
``sitecustomize`` and ``usercustomize``, and epfinder's own startup hooks. Each item names the
distribution that installed its file (from ``RECORD`` or ``installed-files.txt``, with the hash
checked), and says under which of ``-I``, ``-E``, ``-s`` and ``-S`` it runs.

Command line only: nothing here runs at interpreter start. It reads what ``site`` would read and
imports nothing of what it lists (``--time`` measures each item in a child interpreter).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import subprocess
import sys
from typing import Any, Iterator

import _epfinder_boot as _boot

# From 3.15 site reads every .pth of every site directory first, runs all their import lines, then
# the .start entries (PEP 829); before, each .pth line runs as it is read.
_PEP_829 = sys.version_info >= (3, 15)
_NO_IMPORT_LINES = sys.version_info >= (3, 18)  # PEP 829: import lines are ignored from 3.18


def _nonblocking(path: str, flags: int) -> int:
    # status and startup list read what others may have put in a site directory (a .pth, a RECORD):
    # a FIFO there reads empty instead of hanging the tool (docs/security.md, rule 3).
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _site_source() -> str:
    # The running site module's source: it is frozen from 3.11 on, so inspect cannot get it, but
    # its file is still beside the standard library.
    import site

    try:
        with open(site.__file__, encoding="utf-8") as f:
            return f.read()
    except (OSError, TypeError, AttributeError, UnicodeDecodeError):
        return ""


def _venv_site_first() -> bool:
    # Up to 3.14, site.venv() processes the venv's site-packages itself ("so that the venv takes
    # precedence over the user site"), and addsitepackages() then processes it again: its .pth
    # import lines run twice at every start. 3.15 gathers each directory once.
    return sys.prefix != sys.base_prefix and "addsitepackages(known_paths, [sys.prefix])" in _site_source()


def site_directories(path: list[str]) -> list[tuple[str, bool, bool]]:
    """(site dir, is the user site, processed a second time) in the order site.main() goes."""
    import site

    dirs: list[tuple[str, bool]] = []
    first = _venv_site_first()
    if first:
        dirs += [(d, False) for d in site.getsitepackages([sys.prefix])]
    if site.ENABLE_USER_SITE:
        dirs.append((site.getusersitepackages(), True))
    dirs += [(d, False) for d in site.getsitepackages()]
    seen: set[str] = set()
    ordered = []
    for d, user in dirs:
        key = os.path.normcase(os.path.abspath(d))
        if os.path.isdir(d):
            ordered.append((d, user, key in seen))
            seen.add(key)
    return ordered


def _skips_hidden() -> bool:
    # 3.13 (and fixes backported to some 3.12 releases) skip .pth files whose name starts with a
    # dot; ask the running site module rather than guess from the version.
    source = _site_source()
    if not source:
        return sys.version_info >= (3, 13)
    return 'name.startswith(".")' in source or "name.startswith('.')" in source


def _lines(file: str) -> list[str]:
    with open(file, "rb", opener=_nonblocking) as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        import locale

        text = data.decode(locale.getencoding() if hasattr(locale, "getencoding") else "latin-1",
                           errors="replace")
    return text.splitlines()


# --- who installed a file -----------------------------------------------------------------------


class Owners:
    """The files that the distributions of some site directories record as theirs."""

    def __init__(self, dirs: list[str]):
        # Two distributions may list one file (an upgrade that left the old *.dist-info behind).
        self.files: dict[str, list[tuple[str, str, str]]] = {}
        for site_dir in dirs:
            try:
                children = os.listdir(site_dir)
            except OSError:
                continue
            for child in children:
                entry = os.path.join(site_dir, child)
                if child.endswith(".dist-info"):
                    self._record(site_dir, entry)
                elif child.endswith(".egg-info") and os.path.isdir(entry):
                    self._installed_files(entry)

    def _name(self, entry: str) -> tuple[str, str]:
        from . import _startup_entries

        for name in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(entry, name), encoding="utf-8", opener=_nonblocking) as f:
                    values = _startup_entries.header_values(f.read(), ("name", "version"))
                return values.get("name") or "?", values.get("version") or "?"
            except (OSError, UnicodeDecodeError):
                continue
        return os.path.basename(entry).partition("-")[0], "?"

    def _record(self, site_dir: str, entry: str) -> None:
        try:
            with open(os.path.join(entry, "RECORD"), encoding="utf-8", newline="", opener=_nonblocking) as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            return
        name, version = self._name(entry)
        for row in rows:
            if row and row[0]:
                path = os.path.normpath(os.path.join(site_dir, row[0]))
                self.files.setdefault(path, []).append((name, version, row[1] if len(row) > 1 else ""))

    def _installed_files(self, entry: str) -> None:
        try:
            lines = _lines(os.path.join(entry, "installed-files.txt"))
        except OSError:
            return
        name, version = self._name(entry)
        for line in lines:
            if line.strip():
                path = os.path.normpath(os.path.join(entry, line.strip()))
                self.files.setdefault(path, []).append((name, version, ""))

    def of(self, file: str) -> dict[str, Any]:
        """{"distribution", "version", "state"}: state is installed, modified or no_owner.

        Of several distributions that list the file, the one whose recorded hash it matches.
        """
        found = self.files.get(os.path.normpath(file))
        if not found:
            return {"distribution": None, "version": None, "state": "no_owner"}
        answers = [(name, version, self._state(file, recorded)) for name, version, recorded in found]
        name, version, state = next((a for a in answers if a[2] == "installed"), answers[0])
        return {"distribution": name, "version": version, "state": state}

    @staticmethod
    def _state(file: str, recorded: str) -> str:
        algorithm, _, expected = recorded.partition("=")
        if not expected:
            return "installed"  # no hash recorded (installed-files.txt, RECORD's own line)
        try:
            digest = hashlib.new(algorithm)
            with open(file, "rb", opener=_nonblocking) as f:
                digest.update(f.read())
        except (OSError, ValueError):
            return "modified"
        actual = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")
        return "installed" if actual == expected else "modified"


# --- what runs --------------------------------------------------------------------------------------


def _item(kind: str, file: str | None, line: int | None, code: str, site_dir: str | None, user: bool,
          from_environment: bool = False) -> dict[str, Any]:
    runs = {"-S": False, "-s": not user, "-E": not from_environment, "-I": not user and not from_environment}
    return {"kind": kind, "file": file, "line": line, "code": code, "site_dir": site_dir,
            "runs_code": kind not in ("pth_path",), "runs_under": runs, "disabled_by": None, "again": False}


def _read_all(site_dir: str, names: list[str], suffix: str, hidden: bool) -> Iterator[tuple[str, str, list[str]]]:
    """(name, path, lines) of each readable file of ``names`` with ``suffix``, as site reads them."""
    for name in names:
        if not name.endswith(suffix) or (hidden and name.startswith(".")):
            continue
        file = os.path.join(site_dir, name)
        try:
            yield name, file, _lines(file)
        except OSError:
            continue


def _pth_items(dirs: list[tuple[str, bool, bool]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(.pth items, .start items) in the order site reads them."""
    pth, start = [], []
    hidden = _skips_hidden()
    for site_dir, user, again in dirs:
        try:
            names = sorted(os.listdir(site_dir))
        except OSError:
            continue
        starts = {n[: -len(".start")] for n in names if n.endswith(".start")} if _PEP_829 else set()
        for name, file, lines in _read_all(site_dir, names, ".pth", hidden):
            disabled = os.path.join(site_dir, name[: -len(".pth")] + ".start") \
                if name[: -len(".pth")] in starts else None
            for number, text in enumerate(lines, 1):
                if text.startswith("#") or not text.strip():
                    continue
                if text.startswith(("import ", "import\t")):
                    item = _item("pth_import", file, number, text.rstrip("\n"), site_dir, user)
                    if disabled or _NO_IMPORT_LINES:
                        item["disabled_by"] = disabled or "Python 3.18+ ignores .pth import lines"
                elif again:
                    continue  # a path is added once; only import lines run again
                else:
                    item = _item("pth_path", file, number, text.rstrip(), site_dir, user)
                item["again"] = again
                pth.append(item)
        if _PEP_829:
            for _name, file, lines in _read_all(site_dir, names, ".start", hidden):
                for number, text in enumerate(lines, 1):
                    if text.strip() and not text.strip().startswith("#"):
                        start.append(_item("start_entry", file, number, text.strip(), site_dir, user))
    return pth, start


def _customize(name: str, path: list[str], dirs: list[tuple[str, bool, bool]], user: bool) -> dict[str, Any]:
    """Which ``sitecustomize``/``usercustomize`` a start would import, found as import would find it."""
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec(name, path)
    file = getattr(spec, "origin", None) if spec is not None else None
    site_dirs = {os.path.normcase(os.path.abspath(d)) for d, _, _ in dirs}
    where = None
    from_environment = False
    if file:
        for entry in path:
            if entry and os.path.normcase(os.path.abspath(file)).startswith(
                    os.path.normcase(os.path.abspath(entry)) + os.sep):
                where = entry
                break
        # Found in a PYTHONPATH entry (not a site directory nor the standard library): -E and -I
        # leave that entry out, so the module is not found then.
        pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        from_environment = where is not None and os.path.normcase(os.path.abspath(where)) not in site_dirs \
            and any(os.path.abspath(p) == os.path.abspath(where) for p in pythonpath)
    item = _item(name, file, None, f"import {name}" if file else "", where, user, from_environment)
    item["runs_code"] = bool(file)
    if not file:
        item["runs_under"] = {flag: False for flag in item["runs_under"]}
    return item


def _hooks(config: dict[str, str], user_site: str | None) -> list[dict[str, Any]]:
    environ = {} if sys.flags.ignore_environment else os.environ
    hooks, _problems = _boot.startup_plan(config, environ.get("EPFINDER_STARTUP_SKIP", ""))
    items = []
    for hook in hooks:
        user = user_site is not None and hook["site_dir"] == user_site
        item = _item("epfinder_hook", None, None, hook["value"], hook["site_dir"], user)
        item.update(id=hook["id"], priority=hook["priority"])
        if not hook["enabled"]:
            item["disabled_by"] = hook["why"]
        items.append(item)
    return items


def audit(path: list[str], config: dict[str, str], enabled: bool) -> list[dict[str, Any]]:
    """Every item, in the order a start of this interpreter runs them, each with its owner.

    ``path`` is sys.path as a program started with this interpreter sees it after ``site``.
    """
    import site

    dirs = site_directories(path)
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    pth, start = _pth_items(dirs)
    if _PEP_829:
        # Paths of every .pth first, then every import line, then every .start entry.
        items = [i for i in pth if i["kind"] == "pth_path"] + [i for i in pth if i["kind"] == "pth_import"] + start
    else:
        items = pth
    items.append(_customize("sitecustomize", path, dirs, user=False))
    if site.ENABLE_USER_SITE:
        items.append(_customize("usercustomize", path, dirs, user=True))
    hooks = _hooks(config, user_site) if enabled else []
    items += hooks
    owners = Owners(list(dict.fromkeys(d for d, _, _ in dirs)))
    for order, item in enumerate(items, 1):
        item["order"] = order
        item["owner"] = owners.of(item["file"]) if item["file"] else _hook_owner(item, hooks)
    return items


def _hook_owner(item: dict[str, Any], hooks: list[dict[str, Any]]) -> dict[str, Any]:
    if item["kind"] == "epfinder_hook":
        # The hook's distribution registered it in its entry_points.txt, which RECORD covers.
        return {"distribution": item["id"].partition(":")[0], "version": None, "state": "registered"}
    return {"distribution": None, "version": None, "state": "no_owner"}


# --- --time ---------------------------------------------------------------------------------------

_TIMER = """
import sys, time
sys.path[:] = {path!r}
kind, code, site_dir = {kind!r}, {code!r}, {site_dir!r}
started = time.perf_counter()
if kind == "pth_import":
    exec(code, {{"sitedir": site_dir, "__name__": "__main__"}})
elif kind == "start_entry":
    import pkgutil
    pkgutil.resolve_name(code)()
elif kind == "epfinder_hook":
    import _epfinder_boot
    _epfinder_boot.load_hook(code)()
else:
    __import__(kind)
print((time.perf_counter() - started) * 1e3)
"""


def measure(items: list[dict[str, Any]], path: list[str]) -> None:
    """Each code item's cost in ms (import and call), in a child interpreter started with -S.

    The child has the start's sys.path but runs nothing of site, so each item pays for what it
    imports itself; nothing in the environment is changed.
    """
    for item in items:
        item["cost_ms"] = None
        if not item["runs_code"] or item["disabled_by"]:
            continue
        code = _TIMER.format(path=path, kind=item["kind"], code=item["code"], site_dir=item["site_dir"])
        try:
            proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
            item["cost_ms"] = round(float(proc.stdout.strip().splitlines()[-1]), 2)
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            item["cost_ms"] = None
