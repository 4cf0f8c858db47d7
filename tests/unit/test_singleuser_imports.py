"""The base image's edit of jupyterhub (bindery/stack/base/singleuser_imports.py), applied to a copy
of the jupyterhub bindery pins (the hub's own, the same version the base image installs): the
modules a single-user server imports load without the hub's database layer, and that layer still
loads, and works, where it is used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.base_recipe import singleuser_imports

# What jupyterhub.singleuser's modules import from the hub package (the server extension itself
# needs jupyter_server, which the hub's environment does not have; the image test covers it).
SINGLE_USER_IMPORTS = ("jupyterhub.services.auth", "jupyterhub.log", "jupyterhub.utils",
                       "jupyterhub.metrics", "jupyterhub.httpclient")


def copy_of_jupyterhub(tmp_path: Path) -> Path:
    package = tmp_path / "jupyterhub"
    shutil.copytree(singleuser_imports.package_dir(), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return package


@pytest.fixture
def edited(tmp_path: Path) -> Path:
    package = copy_of_jupyterhub(tmp_path)
    singleuser_imports.edit(package)
    return package


def run(package: Path, code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(package.parent)},
                            cwd=package.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


# Defines hub_side(): the hub-side modules loaded so far (the build's own check uses the same).
HUB_SIDE = ("import sys\n"
            f"def hub_side():\n    return {singleuser_imports.HUB_SIDE_LOADED}\n")


def test_the_single_user_imports_leave_the_database_layer_out(edited: Path):
    out = run(edited, HUB_SIDE + f"import {', '.join(SINGLE_USER_IMPORTS)}, json, jupyterhub\n"
              "print(json.dumps({'file': jupyterhub.__file__, 'loaded': hub_side()}))")
    assert out["file"].startswith(str(edited))  # the edited copy, not the installed package
    assert out["loaded"] == []


def test_the_same_imports_load_it_unedited(tmp_path: Path):
    """The edit is what makes the difference (the check above could not pass by accident)."""
    package = copy_of_jupyterhub(tmp_path)
    out = run(package, HUB_SIDE + f"import {', '.join(SINGLE_USER_IMPORTS)}, json\n"
              "print(json.dumps({'loaded': hub_side()}))")
    assert "sqlalchemy" in out["loaded"] and "jupyterhub.orm" in out["loaded"]


def test_the_database_layer_still_loads_and_works_where_used(edited: Path):
    code = HUB_SIDE + """
import asyncio, json, logging
from unittest import mock
from jupyterhub import scopes, utils, log, metrics
checks = {}
# scopes: without a db nothing is loaded; the hub's classes are the real ones when used
checks['intersect'] = sorted(scopes._intersect_expanded_scopes({'read:users'}, {'read:users'}))
checks['before_use'] = hub_side()
from jupyterhub import orm
checks['same_orm'] = scopes.orm.User is orm.User and metrics.orm.Spawner is orm.Spawner
# utils.catch_db_error still catches SQLAlchemy's errors and rolls back
import sqlalchemy.exc
class Handler:
    log = logging.getLogger('test')
    db = mock.Mock()
    @utils.catch_db_error
    def fails(self):
        raise sqlalchemy.exc.OperationalError('stmt', {}, Exception('db gone'))
h = Handler()
asyncio.run(h.fails())
checks['rolled_back'] = h.db.rollback.called
# log.log_request still logs the hub's health checks at debug level
from jupyterhub.handlers.pages import HealthCheckHandler
from tornado.httputil import HTTPHeaders, HTTPServerRequest
handler = mock.Mock(spec=HealthCheckHandler)
handler.get_status.return_value = 200
handler.request = HTTPServerRequest(method='GET', uri='/hub/health', headers=HTTPHeaders())
handler.current_user = None
with mock.patch.object(log, 'access_log') as access:
    log.log_request(handler)
checks['health_debug'] = [c[0][0] for c in access.log.call_args_list] == [logging.DEBUG]
print(json.dumps(checks))
"""
    out = run(edited, code)
    assert out["intersect"] == ["read:users"]
    assert out["before_use"] == []
    assert out["same_orm"] is True
    assert out["rolled_back"] is True
    assert out["health_debug"] is True


def test_a_text_not_found_stops_the_edit_and_writes_nothing(tmp_path: Path, monkeypatch):
    package = copy_of_jupyterhub(tmp_path)
    before = {p.name: p.read_text() for p in package.glob("*.py")}
    edits = dict(singleuser_imports.EDITS)
    edits["utils.py"] = [*edits["utils.py"], ("a line no jupyterhub version has\n", "")]
    monkeypatch.setattr(singleuser_imports, "EDITS", edits)
    with pytest.raises(singleuser_imports.EditFailed, match="utils.py.*revisit"):
        singleuser_imports.edit(package)
    assert {p.name: p.read_text() for p in package.glob("*.py")} == before
