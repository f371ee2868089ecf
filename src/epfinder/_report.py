"""What the next interpreter of this environment will do: the model behind status, verify and startup list.

Each answer is computed from the files and settings that such an interpreter reads, the way
_epfinder_boot and the finder read them, and not from the state of the tool's own process: the
environment's config, EPFINDER_MODE and the other variables as they are set here, the caches on
disk, the hook table. Each state comes from a fixed set, with the sentence that explains it kept
apart. The JSON schema built from these dicts is documented in docs/cli.md (version 1).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

import _epfinder_boot as _boot

from . import _cache, _record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SCHEMA_VERSION = 1

ENVIRONMENT_STATES = ("not_installed", "not_enabled", "off", "invalid_mode", "enabled")
ENTRY_STATES = ("fresh", "stale", "missing", "corrupt", "untrusted", "unreadable", "unwritable", "plain",
                "absent", "not_served")
HOOKS_STATES = ("not_enabled", "all_off", "none", "run")
HOOK_STATES = ("runs", "disabled", "skipped", "all_off", "not_enabled")
VERIFY_STATES = ("same", "differs", "stale", "missing", "corrupt", "unscannable", "plain", "absent")

_SOURCE_TEXT = {"EPFINDER_MODE": "from EPFINDER_MODE", "config": "from the config", "default": "the default"}


def _environ() -> Mapping[str, str]:
    return {} if sys.flags.ignore_environment else os.environ


def _same_dir(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def package_site() -> str:
    """The directory epfinder runs from: where its start-up module, its config and the .pth that
    `install` writes are."""
    return os.path.dirname(os.path.abspath(_boot.__file__))


def site_dirs() -> list[str]:
    """This interpreter's site directories that exist, as site processing adds them."""
    import site

    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


# --- the environment ------------------------------------------------------------------------------


def environment(site_dir: str | None = None) -> dict[str, Any]:
    """Whether the next interpreter loads epfinder, and in which mode (a dict; see docs/cli.md).

    ``site_dir``: the installation to describe (default: the one this tool runs from).
    """
    site_dir = site_dir or package_site()
    config_file = os.path.join(site_dir, _boot.CONFIG_DIR, _boot.CONFIG_FILE)
    in_site = any(_same_dir(site_dir, d) for d in site_dirs())
    installed = in_site and os.path.exists(os.path.join(site_dir, "_epfinder_boot.py"))
    config = _boot.read_config(site_dir) if installed else None
    entry_file = _record.entry_file()[0]
    switched_on = config is not None and config.get("enabled") == "1"
    # What `install` writes is both: the config says how, the .pth (or .start) makes site run it.
    enabled = switched_on and os.path.exists(os.path.join(site_dir, entry_file))
    ignored = _config_problem(config_file) if installed and config is None else None
    from_env = _boot.env_mode()
    setting = from_env or (config or {}).get("mode") or None
    source = "EPFINDER_MODE" if from_env else "config" if setting else "default"
    wanted = setting or _boot.DEFAULT_MODE
    mode = "off"
    if not in_site:
        state = "not_installed"
        message = (f"not installed: epfinder runs from {site_dir}, which is not a site directory of this "
                   "interpreter, so no interpreter loads it; importlib.metadata scans as usual")
    elif not installed:
        state = "not_installed"
        message = (f"not installed: {site_dir} has no _epfinder_boot.py, so no interpreter loads epfinder; "
                   "importlib.metadata scans as usual")
    elif not enabled:
        state = "not_enabled"
        message = (f"installed in {site_dir}, not enabled: interpreters load nothing of epfinder and "
                   "importlib.metadata scans as usual (python -m epfinder install switches it on)")
        if switched_on:
            message = (f"installed in {site_dir}, not enabled: its config says enabled, but {entry_file} is "
                       "missing, so interpreters load nothing of epfinder and importlib.metadata scans as usual "
                       "(python -m epfinder install writes it again)")
        elif ignored:
            message = (f"installed in {site_dir}, not enabled: its config {config_file} is ignored ({ignored}), "
                       "so interpreters load nothing of epfinder and importlib.metadata scans as usual "
                       "(python -m epfinder install writes a new one)")
        if from_env:
            message += "; EPFINDER_MODE has no effect until then"
    elif wanted not in _boot.MODES:
        state = "invalid_mode"
        message = (f"enabled in {site_dir}, but {'EPFINDER_MODE' if from_env else 'the mode in the config'} "
                   f"is {wanted!r}, not one of {', '.join(_boot.MODES)}: each interpreter prints one line "
                   "about it and importlib.metadata scans as usual")
    elif wanted == "off":
        state = "off"
        message = (f"enabled in {site_dir}, but mode off ({_SOURCE_TEXT[source]}): importlib.metadata "
                   "scans as usual, and no startup hook runs")
    else:
        state = "enabled"
        mode = wanted
        message = f"enabled in {site_dir}, mode {mode} ({_SOURCE_TEXT[source]}): importlib.metadata is answered from the caches"
    return {
        "state": state,
        "message": message,
        "site_dir": site_dir,
        "config": config_file if config is not None else None,
        "mode": mode,
        "mode_source": source if enabled else None,
        "mode_setting": setting,
        "_config": config or {},
    }


def _config_problem(config_file: str) -> str | None:
    """Why a config that exists is not read (the rule of docs/security.md), or None."""
    try:
        data = _boot.read_trusted(config_file, os.path.dirname(os.path.dirname(config_file)), 65536)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
    try:
        data.decode("utf-8")
    except ValueError:
        return "not UTF-8 text"
    return None


def public(env: dict[str, Any]) -> dict[str, Any]:
    """The environment dict without the parts that are not in the schema."""
    return {k: v for k, v in env.items() if not k.startswith("_")}


# --- sys.path entries --------------------------------------------------------------------------------


def _can_write(path: str) -> bool:
    # Where the finder would write: inside a directory that keeps its cache there, else per user.
    if _cache.caches_in_directory(path):
        sub = os.path.join(path, _cache.SUBDIR)
        if os.access(sub if os.path.isdir(sub) else path, os.W_OK):
            return True
    root = _cache.user_cache_root()
    while not os.path.exists(root):
        parent = os.path.dirname(root)
        if parent == root:
            return False
        root = parent
    return os.path.isdir(root) and os.access(root, os.W_OK)


def _find_cache(
    path: str, dir_uid: int,
) -> tuple[_cache.DirCache | None, str | None, int | None, tuple[str, str, str | None] | None]:
    """(usable DirCache or None, its file, its entry point count, the first problem found).

    The candidates in the finder's order, with its rules (_cache.load); a problem is
    (state, file, detail). Every line is decoded, as queries eventually would: a damaged group
    line shows here, not only a damaged header.
    """
    problem: tuple[str, str, str | None] | None = None
    for file in _cache.candidate_files(path):
        try:
            # As the finder reads it: checked on its descriptor first, so a FIFO never blocks.
            data = _boot.read_trusted(file, dir_uid, _cache.MAX_SIZE)
        except (FileNotFoundError, NotADirectoryError):
            continue  # no such file, or a file where one of its folders would be
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                problem = problem or ("untrusted", file, "a symbolic link")
            elif exc.errno == errno.EPERM:  # refused by the rule of docs/security.md
                problem = problem or ("untrusted", file, exc.strerror)
            else:
                problem = problem or ("unreadable", file, exc.strerror)
            continue
        try:
            cache = _cache.DirCache(path, data)
            entry_points = sum(sum(1 for _ in cache.group(g)) for g in cache.groups)
            tables(cache)
            return cache, file, entry_points, problem
        except _cache.CacheError as exc:
            problem = problem or ("corrupt", file, str(exc))
    return None, None, None, problem


def _plain_kind(path: str) -> tuple[str, str] | None:
    """('plain' or 'absent', why) for an entry that is never served from a cache, or None."""
    if path == "":
        return "plain", "the current directory: importlib.metadata scans it at each query, never cached"
    if type(path) is not str or not os.path.isabs(path):
        return "plain", "a relative entry: importlib.metadata scans it at each query, never cached"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "absent", "does not exist: contributes nothing"
    except OSError as exc:
        return "plain", f"cannot be read ({exc.strerror}): importlib.metadata tries it at each query"
    if not stat.S_ISDIR(st.st_mode):
        return "plain", "a file (a zip archive): importlib.metadata scans it at each query, never cached"
    if os.path.basename(path).lower().endswith(".egg"):
        return "plain", "an egg: importlib.metadata scans it at each query, never cached"
    return None


def _describes(cache: _cache.DirCache, st: os.stat_result, mode: str) -> bool:
    """Whether a cache still describes its directory as a query in ``mode`` would check it: the
    signature, and the watched entries (every entry in strict mode; docs/cache-format.md)."""
    if cache.signature != _boot.dir_signature(st):
        return False
    try:
        return cache.stamps_match() if mode == "strict" else cache.watched_match()
    except _cache.CacheError:
        return False


def entry_status(path: str, env: dict[str, Any]) -> dict[str, Any]:
    """What the next interpreter does with one sys.path entry (a dict; see docs/cli.md)."""
    info: dict[str, Any] = {"path": path, "state": None, "message": None, "cache": None, "distributions": None,
            "entry_points": None}
    if env["state"] != "enabled":
        info["state"] = "not_served"
        info["message"] = "importlib.metadata scans it at each query (epfinder is not in use)"
        if type(path) is str and os.path.isabs(path) and os.path.isdir(path):
            existing = [f for f in _cache.candidate_files(path) if os.path.exists(f)]
            if existing:
                info["cache"] = existing[0]
                info["message"] += "; its cache is not read"
        return info
    plain = _plain_kind(path)
    if plain is not None:
        info["state"], info["message"] = plain
        return info
    mode = env["mode"]
    st = os.stat(path)
    cache, file, entry_points, problem = _find_cache(path, st.st_uid)
    if cache is not None:
        info.update(cache=file, distributions=cache.count, entry_points=entry_points)
        fresh = _describes(cache, st, mode)
        if fresh:
            info["state"] = "fresh"
            info["message"] = ("answered from its cache, which is never checked again in this mode"
                               if mode == "only" else "answered from its cache")
        elif mode == "only":
            info["state"] = "stale"
            info["message"] = ("the directory changed since its cache was written, but only mode answers from "
                               "the cache as it is (python -m epfinder refresh)")
        elif mode == "trust":
            info["state"] = "stale"
            info["message"] = ("the directory changed since its cache was written, but trust mode answers from "
                               "the cache as it is, except for a name the cache does not know "
                               "(python -m epfinder refresh)")
        else:
            info["state"] = "stale"
            info["message"] = "the directory changed since its cache was written: "
            if file == _cache.in_directory_file(path) and not os.access(os.path.dirname(file), os.W_OK):
                # The finder reads this file first; a cache this user writes elsewhere comes after it.
                info["message"] += (f"rescanned at each query, until someone who can write {os.path.dirname(file)} "
                                    "runs python -m epfinder refresh")
            elif _can_write(path):
                info["message"] += "rescanned at the next query, and the cache rewritten"
            else:
                info["message"] += "rescanned at each query (nowhere this user can write a new cache)"
        return info
    if problem is not None:
        state, info["cache"], detail = problem
    else:
        state, detail = "missing", None
    if state == "missing" and mode != "only" and not _can_write(path):
        state = "unwritable"
    info["state"] = state
    reason = {
        "missing": "no cache",
        "unwritable": "no cache, and nowhere this user can write one",
        "corrupt": f"its cache is damaged ({detail})",
        "untrusted": f"its cache is {detail}, so it is ignored",
        "unreadable": f"its cache cannot be read ({detail})",
    }[state]
    if mode == "only":
        info["message"] = f"{reason}: contributes no distributions, because only mode never scans (python -m epfinder refresh)"
    elif state == "unwritable" or not _can_write(path):
        info["message"] = f"{reason}: scanned at each query"
    else:
        info["message"] = f"{reason}: scanned at the next query, and cached"
    return info


# --- startup hooks -------------------------------------------------------------------------------


def plan(env: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(hooks, problems) as _epfinder_boot orders them, without importing any hook.

    In an enabled environment this is what a start does, hook table rewrite included; elsewhere
    the site directories are read without writing anything.
    """
    config = env["_config"]
    skip = _environ().get("EPFINDER_STARTUP_SKIP", "")
    if env["state"] not in ("not_installed", "not_enabled"):
        return _boot.startup_plan(config, skip)
    from . import _startup_table

    dirs = _boot.startup_site_dirs()
    signatures, tables = {}, {}
    for path in dirs:
        try:
            entry, _undisturbed = _startup_table.scan(path)
        except OSError:
            continue
        signatures[path], tables[path] = entry[_boot.SIGNATURE], entry
    return _boot.startup_plan(config, skip, dirs, (signatures, tables, []))


def _pattern(hook_id: str, patterns: list[str]) -> str | None:
    """The first of ``patterns`` that names ``hook_id``: the exact ID before any wildcard pattern."""
    exact = [p for p in patterns if not any(c in p for c in "*?[")]
    for pattern in exact + [p for p in patterns if p not in exact]:
        if _boot._matches(hook_id, [pattern]):
            return pattern
    return None


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 2)


def hook_rows(env: dict[str, Any], hooks: list[dict[str, Any]], costs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One dict per hook, in run order (see docs/cli.md)."""
    config = env["_config"]
    disabled = [k[16:] for k, v in config.items() if k.startswith("startup.disable.") and v == "1"]
    skipped = [p.strip() for p in _environ().get("EPFINDER_STARTUP_SKIP", "").split(",") if p.strip()]
    # EPFINDER_MODE=off, mode = off in the config, EPFINDER_STARTUP=0: the rule a start follows.
    all_off = _boot.startup_off(config)
    measured = (costs or {}).get("hooks", {})
    rows: list[dict[str, Any]] = []
    for order, hook in enumerate(hooks, 1):
        pattern = None
        if not hook["enabled"] and hook["why"].startswith("disabled"):
            pattern = _pattern(hook["id"], disabled)
            state = "disabled"
            if pattern is None or pattern == hook["id"]:
                message = f"disabled (python -m epfinder startup enable {hook['id']})"
            else:
                message = f"disabled by the pattern {pattern!r} (python -m epfinder startup enable '{pattern}')"
        elif not hook["enabled"]:
            pattern = _pattern(hook["id"], skipped)
            state = "skipped"
            message = f"skipped by EPFINDER_STARTUP_SKIP ({pattern or '?'})"
        elif env["state"] in ("not_installed", "not_enabled"):
            state = "not_enabled"
            message = f"does not run: epfinder is not {'installed' if env['state'] == 'not_installed' else 'enabled'} here"
        elif all_off:
            state, message = "all_off", f"does not run while {all_off}"
        else:
            state, message = "runs", "runs at each start"
        cost = measured.get(hook["id"])
        rows.append({
            "order": order, "id": hook["id"], "priority": hook["priority"],
            "priority_source": hook["priority_from"], "distribution": hook["distribution"],
            "version": hook["version"], "value": hook["value"], "site_dir": hook["site_dir"],
            "state": state, "message": message, "pattern": pattern,
            "last_import_ms": _ms(cost and cost["import_ns"]), "last_call_ms": _ms(cost and cost["call_ns"]),
            "last_outcome": cost and cost["outcome"],
        })
    return rows


def measured_at(costs: dict[str, Any] | None) -> str | None:
    if not costs:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(costs["measured_ns"] / 1e9))


def hooks_summary(
    env: dict[str, Any], rows: list[dict[str, Any]], problems: list[str], costs: dict[str, Any] | None,
) -> dict[str, Any]:
    """The startup hooks of the environment in one dict (see docs/cli.md)."""
    running = [r for r in rows if r["state"] == "runs"]
    all_off = _boot.startup_off(env["_config"])
    summary: dict[str, Any] = {"state": None, "message": None, "registered": len(rows), "will_run": len(running),
               "problems": list(problems), "last_cost_ms": None, "last_measured": None}
    registered = f"{len(rows)} registered" if rows else "none registered"
    if env["state"] in ("not_installed", "not_enabled"):
        summary["state"] = "not_enabled"
        summary["message"] = (f"{registered}; none runs, because epfinder is not "
                              f"{'installed' if env['state'] == 'not_installed' else 'enabled'} here")
    elif all_off:
        summary["state"] = "all_off"
        summary["message"] = f"{registered}; none runs while {all_off}"
    elif not running:
        summary["state"] = "none"
        summary["message"] = f"{registered}; none runs" if rows else "none registered"
    else:
        summary["state"] = "run"
        summary["message"] = f"{len(running)} of {len(rows)} run at each start"
        if env["state"] == "invalid_mode":
            summary["message"] += " (the mode does not stop them; EPFINDER_STARTUP=0 does)"
    timed = [r for r in running if r["last_import_ms"] is not None]
    if running and timed:
        summary["last_cost_ms"] = round(sum(r["last_import_ms"] + r["last_call_ms"] for r in timed), 2)
        summary["last_measured"] = measured_at(costs)
    return summary


# --- verify ------------------------------------------------------------------------------------------


def tables(cache: _cache.DirCache) -> dict[str, Any]:
    return {
        "distributions": [
            (cache.entry(i), cache.name(i), cache.version(i), cache.normalized()[i])
            for i in range(cache.count)
        ],
        "entry points": cache.all_entry_points(),
        "index": {k: list(cache.lookup(k)) for k in cache.index_keys()},
    }


def verify_entry(path: str, env: dict[str, Any]) -> dict[str, Any]:
    """One sys.path entry's cache against a fresh scan (a dict; see docs/cli.md)."""
    mode = env["mode"]
    # Modes that use a cache without checking it make a stale or missing cache a wrong answer.
    unchecked = mode in ("trust", "only")
    info: dict[str, Any] = {"path": path, "state": None, "message": None, "problem": False, "cache": None, "diff": []}
    plain = _plain_kind(path)
    if plain is not None:
        info["state"], info["message"] = plain
        return info
    st = os.stat(path)
    cache, file, _count, problem = _find_cache(path, st.st_uid)
    if cache is None:
        if problem is not None:
            state, info["cache"], detail = problem
            detail = {"corrupt": f"its cache is damaged ({detail})", "untrusted": f"its cache is {detail}",
                      "unreadable": f"its cache cannot be read ({detail})"}[state]
            info.update(state="corrupt" if state == "corrupt" else "missing", problem=mode == "only",
                        message=f"{detail}: " + ("only mode answers nothing from it" if mode == "only"
                                                 else "the next query scans it"))
        else:
            info.update(state="missing", problem=mode == "only",
                        message="no cache: only mode answers nothing from it" if mode == "only"
                        else "no cache: the next query scans it")
        return info
    info["cache"] = file
    fresh = _describes(cache, st, mode)
    if not fresh:
        info.update(state="stale", problem=unchecked,
                    message=f"stale: {mode} mode answers from it as it is (python -m epfinder refresh)"
                    if unchecked else "stale: the next query rescans it")
        return info
    actual = tables(cache)
    try:
        expected = tables(_cache.build(path, write=False))
    except OSError as exc:
        info.update(state="unscannable", message=f"cannot be scanned ({exc.strerror})")
        return info
    if expected == actual:
        info.update(state="same", message="the cache matches a fresh scan")
        return info
    info.update(state="differs", problem=True, message="the cache differs from a fresh scan")
    for key in expected:
        if expected[key] != actual[key]:
            info["diff"] += _diff(key, actual[key], expected[key])
    return info


def _diff(what: str, cached: object, scanned: object) -> list[str]:
    import difflib
    import pprint

    return list(difflib.unified_diff(
        pprint.pformat(cached, width=100).splitlines(),
        pprint.pformat(scanned, width=100).splitlines(),
        f"{what} (cache)", f"{what} (scan)", lineterm="", n=1,
    ))
