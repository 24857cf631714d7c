"""The throwaway PostgreSQL server of the backend tests, for the scores export tests."""

from tests.backends.conftest import postgres  # noqa: F401  (a fixture, used by name)
