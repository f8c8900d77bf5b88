"""Enqueue options are declared once (``EnqueueOptions``): the App's methods, bulk items, the
HTTP request model and the command line offer them under the same names."""

from __future__ import annotations

import inspect

import pytest

from nightcrew import App
from nightcrew.cli import CLI_ENQUEUE_OPTIONS
from nightcrew.http.models import EnqueueRequest
from nightcrew.lifecycle.enqueue import ENQUEUE_KEYS, ENQUEUE_OPTIONS, build_job

HTTP_NAMES = {"delay_seconds": "delay"}
"""Request fields named differently from the option they carry."""


def test_the_http_request_offers_enqueue_options_only() -> None:
    fields = {HTTP_NAMES.get(name, name) for name in EnqueueRequest.model_fields}
    assert fields - {"type", "payload"} <= ENQUEUE_OPTIONS


def test_the_command_line_offers_enqueue_options_only() -> None:
    assert set(CLI_ENQUEUE_OPTIONS) <= ENQUEUE_OPTIONS


def test_bulk_items_take_every_option() -> None:
    assert ENQUEUE_OPTIONS | {"type", "payload"} == ENQUEUE_KEYS


def test_the_app_methods_take_the_declared_options() -> None:
    for method in (App.enqueue, App.aenqueue):
        kinds = {p.name: p.kind for p in inspect.signature(method).parameters.values()}
        assert kinds["options"] is inspect.Parameter.VAR_KEYWORD


def test_a_misspelt_option_is_a_type_error_not_ignored() -> None:
    with pytest.raises(TypeError, match="priorty"):
        build_job({}, "t", {}, strict_types=False, priorty=5)  # type: ignore[call-arg]
