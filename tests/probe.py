"""Run in a child interpreter: ask importlib.metadata everything, print the answers as JSON.

argv[1] is a JSON object:
  paths    entries put at the front of sys.path (in order)
  append   entries put at the end of sys.path (epfinder's own location)
  mode     None: epfinder is not imported at all; else the mode passed to epfinder.enable()
  names    distribution names to ask version(), metadata(), files(), requires() about
  rounds   how many times to ask everything (later rounds hit the in-process state)
  backport import the importlib_metadata backport before ("before") or after ("after") enabling
  library  "backport" to ask importlib_metadata, else the stdlib importlib.metadata

Every answer is recorded together with the exception and the warnings it produced, so that a
differential test compares behaviour, not only return values.
"""

import json
import re
import sys
import warnings


def main():
    spec = json.loads(sys.argv[1])
    sys.path[:0] = spec.get("paths", [])
    sys.path.extend(spec.get("append", []))
    mode = spec.get("mode")
    # Importing the backport changes the stdlib's discovery too (it removes PathFinder's
    # find_distributions), so when it happens relative to enable() matters.
    if spec.get("backport") == "before":
        import importlib_metadata  # noqa: F401
    if mode is not None:
        import epfinder

        epfinder.enable(mode)
    if spec.get("backport") == "after":
        import importlib_metadata  # noqa: F401
    if spec.get("library") == "backport":
        import importlib_metadata as md
    else:
        import importlib.metadata as md
    out = []
    for _ in range(spec.get("rounds", 1)):
        out.append(ask_everything(md, spec.get("names", [])))
    if mode is not None:
        import epfinder

        out.append({"mode": epfinder.current_mode()})
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


def record(fn):
    """(result, exception, warnings) of fn(), in JSON-able form."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ["ok", fn()]
        except BaseException as exc:  # noqa: B902 - everything a caller could see
            result = ["raise", type(exc).__name__, str(exc)]
    result.append(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return result


def dist_id(dist):
    # What a caller can print or log: the type's name and the repr (without the address).
    return [f"{type(dist).__module__}.{type(dist).__qualname__}",
            re.sub(r" at 0x[0-9a-fA-F]+", "", repr(dist)), str(getattr(dist, "_path", None))]


def describe_dist(dist):
    return {
        "id": dist_id(dist),
        "name": record(lambda: dist.name),
        "version": record(lambda: dist.version),
        "normalized": record(lambda: dist._normalized_name),
        "entry_points": record(lambda: [describe_ep(ep) for ep in dist.entry_points]),
        "requires": record(lambda: dist.requires),
        "metadata": record(lambda: [[k, str(v)] for k, v in dist.metadata.items()]),
        "files": record(lambda: describe_files(dist.files)),
        "read_text_record": record(lambda: dist.read_text("RECORD")),
        "locate_file": record(lambda: str(dist.locate_file("x/y.py"))),
    }


def describe_ep(ep):
    dist = getattr(ep, "dist", None)
    return [ep.group, ep.name, ep.value, None if dist is None else dist_id(dist)]


def describe_files(files):
    if files is None:
        return None
    return [[str(f), f.hash and (f.hash.mode, f.hash.value), f.size] for f in files]


def describe_eps_result(result):
    kind = type(result).__name__
    if isinstance(result, dict):  # 3.10/3.11 SelectableGroups
        return [kind, {g: [describe_ep(ep) for ep in eps] for g, eps in result.items()}]
    return [kind, [describe_ep(ep) for ep in result]]


def ask_everything(md, names):
    answers = {}
    answers["distributions"] = record(
        lambda: [describe_dist(d) for d in md.distributions()]
    )
    answers["entry_points()"] = record(lambda: describe_eps_result(md.entry_points()))
    groups = record(lambda: sorted({ep.group for d in md.distributions() for ep in d.entry_points}))
    answers["groups"] = groups
    if groups[0] == "ok":
        for group in groups[1] + ["no-such-group"]:
            answers[f"entry_points(group={group})"] = record(
                lambda: describe_eps_result(md.entry_points(group=group))
            )
    for name in names:
        answers[f"entry_points(name={name})"] = record(
            lambda: describe_eps_result(md.entry_points(name=name))
        )
        answers[f"version({name})"] = record(lambda: md.version(name))
        answers[f"distribution({name})"] = record(lambda: describe_dist(md.distribution(name)))
        answers[f"distributions(name={name})"] = record(
            lambda: [dist_id(d) for d in md.distributions(name=name)]
        )
        answers[f"requires({name})"] = record(lambda: md.requires(name))
        answers[f"files({name})"] = record(lambda: describe_files(md.files(name)))
    answers["packages_distributions"] = record(lambda: md.packages_distributions())
    return answers


if __name__ == "__main__":
    main()
