"""Old pins on today's Python: uv's resolution (the real uv, the real package index) decides, and
what changed is said exactly."""

from __future__ import annotations

import pytest

from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.pinned_sets import mentioned, nearest_installable

# A 2019 Pipfile.lock for Python 3.6 (its default packages)
LOCK_2019 = ["pandas==0.24.2", "numpy==1.16.2", "python-dateutil==2.8.0", "pytz==2018.9",
             "six==1.12.0"]


def test_a_set_that_installs_as_pinned_is_unchanged():
    found = nearest_installable(["tabulate==0.9.0", "six==1.16.0"], "3.11",
                                "https://pypi.org/simple", False, "Pipfile.lock")
    assert found.requirements == ["tabulate==0.9.0", "six==1.16.0"]
    assert found.notices == [] and found.only_binary == []


def test_2019_pins_become_the_nearest_installable_set_each_change_said():
    found = nearest_installable(LOCK_2019, "3.11", "https://pypi.org/simple", False,
                                "Pipfile.lock")
    pins = dict(r.split("==") for r in found.requirements)
    assert pins["six"] == "1.12.0" and pins["pytz"] == "2018.9"  # these install as pinned
    assert pins["numpy"].startswith("1.")  # the same major version
    assert int(pins["pandas"].split(".")[0]) >= 1  # no 0.x pandas installs on 3.11
    assert {"numpy", "pandas"} <= set(found.only_binary)  # never built from old sources
    [notice] = found.notices
    assert notice.startswith("Pipfile.lock: its pinned versions cannot be installed together "
                             "on Python 3.11")
    assert f"pandas 0.24.2 → {pins['pandas']} (newest that installs)" in notice
    assert f"numpy 1.16.2 → {pins['numpy']} (newest of the same major version)" in notice
    assert "six" not in notice and "pytz" not in notice  # only what changed
    assert "pandas" in found.explanation  # uv's own reason, for the build log


def test_strict_refuses_naming_the_file():
    with pytest.raises(BuildpackError, match="pinned in Pipfile.lock cannot be installed on "
                                             "Python 3.11"):
        nearest_installable(LOCK_2019, "3.11", "https://pypi.org/simple", True, "Pipfile.lock")


def test_which_packages_uv_names():
    text = ("Because pandas==0.24.2 has no usable wheels and you require python-dateutil==2.8.0 "
            "and `numpy`, we can conclude ...")
    assert mentioned(text, ["pandas", "python-dateutil", "numpy", "six", "dateutil"]) == \
        ["pandas", "python-dateutil", "numpy"]
