"""Fixtures shared by the service's tests: the local Hub, one throwaway PostgreSQL cluster per
session (started only when a test asks for it), a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.hubserver import HubServer
from tests.pgserver import PostgresServer

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """An empty database of its own for each test."""
    return pg_server.database(f"t{next(_names)}")


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as h:
        yield h
