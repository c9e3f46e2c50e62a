"""Shared pytest configuration."""

pytest_plugins = ["tests.fixtures.s3_server", "tests.fixtures.threads", "tests.fixtures.ui_server"]
