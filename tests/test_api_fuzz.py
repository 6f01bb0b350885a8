"""Schemathesis against the OpenAPI schema of a live server with a real trading history: no 5xx.

Every operation gets generated valid and invalid input; the control endpoints get the token,
so halting and resuming are exercised, not only refused. The default checks also hold each
response to the schema it documents. (schemathesis' pytest plugin does not load under
pytest 9, so the operations are driven through its Python API.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.composing import composed
from tests.apisupport import TOKEN, api_settings, project, serving, trade

EXAMPLES = 100


def test_no_server_errors_and_responses_match_the_schema(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container:
        trade(container, 200, batch_size=50)
        project(container)
        with serving(container) as base:
            schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
            operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
            assert len(operations) >= 17
            for operation in operations:
                fuzz(operation)


def fuzz(operation: schemathesis.APIOperation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        # `from` after `to` is schema-valid (JSON Schema cannot relate two parameters) and gets a
        # deliberate 400 naming `to`, so "valid data is accepted" cannot hold for every request.
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                               excluded_checks=[positive_data_acceptance])

    run()
