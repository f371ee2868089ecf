"""Test sessions: the suite on every supported CPython that pyenv provides."""

import nox

nox.options.sessions = ["tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session):
    # A real wheel, as users get it, not the source tree; uv for the tests that uninstall with it.
    session.install(".", "pytest>=7", "hypothesis>=6", "uv")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[-1])
def docs(session):
    # The documentation site; --strict turns every warning (a broken link or anchor) into a failure.
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", "build/site")
