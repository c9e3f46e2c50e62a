"""Shared pytest configuration."""

pytest_plugins = ["tests.fixtures.s3_server", "tests.fixtures.ui_server"]
