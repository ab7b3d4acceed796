"""GraphQL documents from a fixed-seed fuzzer against a running webserver: mutated valid
documents, truncations, random bytes, deep nesting and many aliases. None may get a 5xx, a
non-JSON answer, or a traceback in the answer."""

from __future__ import annotations

import random
from typing import Any

from tests.webserver.conftest import Web

SEED = 20261203
CASES = 300

VALID = [
    "{ version }",
    "{ runsOrError(limit: 3) { __typename ... on Runs {"
    " results { runId status tags { key value } } } } }",
    '{ runOrError(runId: "x") { __typename ... on Error { message } } }',
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name } } } }",
    "{ repositoriesOrError { __typename } }",
    '{ schedulesOrError(repositorySelector: {repositoryName: "__repository__", '
    'repositoryLocationName: "numbers"}) { __typename } }',
    'mutation { launchRun(executionParams: {selector: {repositoryLocationName: "numbers", '
    'repositoryName: "__repository__", jobName: "none_such"}}) { __typename } }',
    'mutation { terminateRun(runId: "x") { __typename } }',
    'mutation { deleteRun(runId: "x") { __typename } }',
    "query Q($id: ID!) { runOrError(runId: $id) { __typename } }",
    "{ __schema { types { name } } }",
]
PIECES = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$",
    "!",
    "...",
    "@skip(if: true)",
    "on",
    "fragment",
    "query",
    "mutation",
    "subscription",
    '"',
    '"""',
    "\\u0000",
    "\x00",
    "null",
    "-1",
    "1e999",
    "99999999999999999999",
    "__typename",
    "__schema",
    ",",
    "#",
    "\n",
    "ü",
    "\ud800",
]


def _mutate(rng: random.Random, document: str) -> str:
    kind = rng.randrange(7)
    if kind == 0:  # truncate
        return document[: rng.randrange(len(document) + 1)]
    if kind == 1:  # insert pieces
        out = document
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(out) + 1)
            out = out[:at] + rng.choice(PIECES) + out[at:]
        return out
    if kind == 2:  # delete a span
        a = rng.randrange(len(document) + 1)
        b = min(len(document), a + rng.randint(1, 10))
        return document[:a] + document[b:]
    if kind == 3:  # random printable and control characters
        return "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randint(0, 200)))
    if kind == 4:  # deep nesting
        depth = rng.choice([50, 500, 3000])
        return "{ " + "runsOrError { " * depth + "__typename" + " }" * depth + " }"
    if kind == 5:  # many aliases of one field
        count = rng.choice([10, 200, 2000])
        return "{ " + " ".join(f"a{i}: version" for i in range(count)) + " }"
    # swap two tokens
    words = document.split(" ")
    if len(words) > 1:
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def _body(rng: random.Random, document: str) -> Any:
    shape = rng.randrange(6)
    if shape == 0:
        return {"query": document, "variables": rng.choice([None, {}, {"id": 1}, [], "x"])}
    if shape == 1:
        return {"query": document, "operationName": rng.choice(["Q", "", None, 3])}
    if shape == 2:
        return rng.choice([[], {}, None, 1, "query", {"query": None}, {"query": 5}])
    return {"query": document}


async def test_fuzzed_documents_never_get_a_server_error(web: Web) -> None:
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    for _ in range(CASES):
        document = _mutate(rng, rng.choice(VALID))
        body = _body(rng, document)
        if rng.random() < 0.2:
            request = web.session.get(f"{web.url}/graphql", params={"query": document})
        else:
            request = web.session.post(f"{web.url}/graphql", json=body)
        async with request as response:
            text = await response.text()
            assert response.status < 500, (
                document[:200],
                body if len(repr(body)) < 300 else "",
                text[:300],
            )
            assert "Traceback" not in text
            statuses[response.status] = statuses.get(response.status, 0) + 1
    assert statuses.get(200, 0) > 0
