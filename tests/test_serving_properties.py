"""The model server's parsers under generated input: hypothesis builds V1 and V2 bodies,
binary-extension requests, headers, base64 and shapes; schemathesis builds requests from the
server's own /openapi.json. Every answer must be 2xx or 4xx, and the server stays ready.

Both runs are bounded (a fixed number of examples, no example database), so the suite's
time does not grow with repeated runs.
"""

import base64
import io
import json
import struct

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_server import MODEL, Server, serving_copy

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def server(first_run, workspace, tmp_path_factory):
    root = serving_copy(workspace, tmp_path_factory.mktemp("serving"))
    running = Server(root, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


def _tiny_png():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (9, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _tiny_png()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
image_bytes = st.sampled_from([PNG, PNG[:20], b"", b"GIF89a", PNG[:8] + b"\x00" * 30]) | st.binary(
    max_size=64
)
b64_text = (
    image_bytes.map(lambda data: base64.b64encode(data).decode())
    | st.text(max_size=12)
    | image_bytes.map(lambda data: base64.b64encode(data).decode() + "=!")
)
elements = b64_text | json_values
shapes = st.lists(st.integers(-2, 4), max_size=3) | json_values
datatypes = st.sampled_from(["BYTES", "FP32", "INT64", "UINT8", "BOOL", "nonsense", ""])


@st.composite
def v1_bodies(draw):
    instance = st.fixed_dictionaries({"b64": b64_text}) | st.fixed_dictionaries(
        {"images": st.fixed_dictionaries({"b64": b64_text})}
    )
    body = draw(
        st.fixed_dictionaries({"instances": st.lists(instance | json_values, max_size=4)})
        | st.dictionaries(st.sampled_from(["instances", "inputs", "signature_name"]), json_values)
        | json_values
    )
    return "/v1/models/alexnet:predict", json.dumps(body).encode(), {}


@st.composite
def v2_tensors(draw):
    tensor = draw(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["images", "x", ""]),
                "shape": shapes,
                "datatype": datatypes,
                "data": st.lists(elements, max_size=4) | json_values,
            }
        )
    )
    for key in draw(st.sets(st.sampled_from(list(tensor)), max_size=2)):
        del tensor[key]
    return tensor


@st.composite
def v2_bodies(draw):
    body = {"inputs": draw(st.lists(v2_tensors(), max_size=2) | json_values)}
    if draw(st.booleans()):
        body["id"] = draw(json_values)
    if draw(st.booleans()):
        body["outputs"] = draw(json_values)
    return "/v2/models/alexnet/infer", json.dumps(body).encode(), {}


@st.composite
def binary_bodies(draw):
    """The binary tensor extension, as tritonclient builds it, then bent."""
    values = draw(st.lists(b64_text.map(str.encode) | image_bytes, max_size=3))
    data = b"".join(struct.pack("<I", len(value)) + value for value in values)
    data = draw(st.sampled_from([data, data[:-1], data + b"\x00", b"\xff\xff\xff\xff"]))
    declared = draw(st.sampled_from([len(data), len(data) + 3, 0]) | st.integers(-1, 99))
    tensor = {
        "name": draw(st.sampled_from(["images", "x"])),
        "shape": draw(st.sampled_from([[len(values)], [len(values) + 1], [], [1, 2]]) | shapes),
        "datatype": draw(datatypes),
        "parameters": draw(
            st.sampled_from([{"binary_data_size": declared}, {}, {"binary_data_size": "9"}])
        ),
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    length = draw(st.sampled_from([len(header), len(header) - 1, 0]) | st.integers(-3, 999))
    headers = {"inference-header-content-length": str(length)}
    return "/v2/models/alexnet/infer", header + data, headers


content_types = st.sampled_from(
    [None, "application/json", "text/plain", "application/octet-stream", "image/png", "x"]
)


@BOUNDED
@given(request=v1_bodies() | v2_bodies() | binary_bodies(), content_type=content_types)
def test_generated_requests_get_2xx_or_4xx_and_the_server_stays_ready(
    server, request, content_type
):
    path, content, headers = request
    if content_type is not None:
        headers = {**headers, "content-type": content_type}
    response = server.client.post(path, content=content, headers=headers)
    assert 200 <= response.status_code < 500, (path, content[:300], headers, response.text)
    assert server.client.get("/v2/health/ready").status_code == 200


def test_after_the_generated_requests_the_server_is_ready_and_answers(server):
    assert server.client.get("/v2/health/ready").status_code == 200
    response = server.v1([PNG])
    assert response.status_code == 200
    assert response.json()["model_version"] == "1"


def test_schemathesis_on_the_servers_own_openapi_finds_no_5xx(server):
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"POST /v1/models/{model_name}:predict", "POST /v2/models/{model_name}/infer"} <= {
        operation.label for operation in operations
    }
    server_errors = []
    for operation in operations:
        _schemathesis_check(operation, server.url, server_errors)()
    assert server_errors == []
    assert httpx.get(f"{server.url}/v2/models/{MODEL}/ready").json()["ready"] is True


def _schemathesis_check(operation, url: str, server_errors: list):
    """One bounded hypothesis test per operation; 5xx answers are collected."""

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case):
        response = case.call(base_url=url, timeout=60)
        if response.status_code >= 500:
            server_errors.append((operation.label, response.status_code, response.text))

    return call
