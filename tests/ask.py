"""Run by a venv's interpreter in the workflow tests: answer queries as a program would, as JSON.

``python ask.py SPEC`` answers once; ``python ask.py serve`` stays alive and answers one SPEC per
line of standard input, as a long-running process (a daemon, a Jupyter kernel) would. SPEC is a
JSON object:
  names     distribution names: version(), metadata()["Version"], entry points of distribution()
  groups    entry_points(group=...) for each
  packages  import names to look up in packages_distributions()
  hold      names whose distribution() the serving process keeps and asks again each time
  library   "backport" to ask importlib_metadata instead of importlib.metadata

Each answer is ["ok", value] or ["raise", type name, message], so exceptions compare as data.
"""

import json
import sys

_held = {}


def record(fn):
    try:
        return ["ok", fn()]
    except Exception as exc:
        return ["raise", type(exc).__name__, str(exc)]


def eps(found):
    return sorted([ep.group, ep.name, ep.value] for ep in found)


def answer(spec):
    if spec.get("library") == "backport":
        import importlib_metadata as md
    else:
        import importlib.metadata as md
    out = {}
    for name in spec.get("names", []):
        out[f"version({name})"] = record(lambda: md.version(name))
        out[f"metadata({name})"] = record(lambda: md.metadata(name)["Version"])
        out[f"distribution({name}).entry_points"] = record(lambda: eps(md.distribution(name).entry_points))
    for group in spec.get("groups", []):
        out[f"entry_points(group={group})"] = record(lambda: eps(md.entry_points(group=group)))
    if spec.get("packages"):
        mapping = record(md.packages_distributions)
        for package in spec["packages"]:
            out[f"packages_distributions()[{package}]"] = (
                ["ok", mapping[1].get(package)] if mapping[0] == "ok" else mapping)
    for name in spec.get("hold", []):
        if name not in _held:
            _held[name] = md.distribution(name)
        dist = _held[name]
        out[f"held {name}"] = [record(lambda: dist.version), record(lambda: eps(dist.entry_points)),
                               record(lambda: dist.read_text("entry_points.txt"))]
    out["distributions"] = record(lambda: sorted([d.metadata["Name"] or "", d.version or ""]
                                                 for d in md.distributions()))
    return out


def main():
    if sys.argv[1] == "serve":
        for line in sys.stdin:
            print(json.dumps(answer(json.loads(line))), flush=True)
    else:
        print(json.dumps(answer(json.loads(sys.argv[1]))))


if __name__ == "__main__":
    main()
