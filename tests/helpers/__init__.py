"""What the tests share besides fixtures: constants, builders and small classes, one module per kind of thing.

Test modules and conftest files import from here (`from tests.helpers.projects import write_project`); conftest
files hold fixtures only, and the fixtures used by more than one folder live in `tests/plugins/`. The fake forge
and MLflow services stay in `tests/servers/`.
"""
