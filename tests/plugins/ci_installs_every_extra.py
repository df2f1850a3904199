"""A pytest plugin (tests/conftest.py loads it): under ``CI`` a test that skips for a missing extra fails instead.

`make test` installs every extra before the suite runs, so there a skip such as ``pytest.importorskip("ray",
reason="needs the openrlhf extra")`` can only hide a broken install. Elsewhere (a laptop with the core install) the
same tests skip. A skip counts as one for a missing extra when its reason says "needs the ..." as every such skip here
does.
"""

import os

import pytest

MISSING_EXTRA = "needs the "


def _fail_under_ci(report) -> None:
    if os.environ.get("CI") and report.skipped and MISSING_EXTRA in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where `make test` installs every extra: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):  # a module-level importorskip skips the whole module at collection
    outcome = yield
    _fail_under_ci(outcome.get_result())
