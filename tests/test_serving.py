"""The KServe model server, run for real as `alexnet-tfx serve` on the tiny pipeline's model:
both protocols, the predict CLI, bad input, a fuzz run, and hot reload under load.

One server runs for the whole module; the hot-reload test changes its versions, so it is last.
"""

import io
import json
import os
import random
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import encode, png_header, run_cli
from model_server import MODEL, Server, b64, free_port, publish, resave, serving_copy


@pytest.fixture(scope="module")
def serving_dir(first_run, workspace, tmp_path_factory):
    """A serving directory of our own, holding the first run's pushed version 1."""
    return serving_copy(workspace, tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def server(serving_dir, tmp_path_factory):
    running = Server(
        serving_dir, tmp_path_factory.mktemp("server") / "server.log", "--request-timeout", 3
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def images(demo_dir):
    return {path.parent.name: path.read_bytes() for path in sorted(demo_dir.glob("*/*.jpg"))[::7]}


@pytest.fixture(scope="module")
def in_process(serving_dir):
    from serving.served_model import ServedModel

    return ServedModel.latest(str(serving_dir), MODEL)


def listening_addresses(port):
    """Local addresses listening on `port`, from the kernel's socket table."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_binds_to_loopback_only_by_default(server):
    assert listening_addresses(server.port) == ["0100007F"]  # 127.0.0.1, little-endian


def test_v1_predictions_match_the_model_in_process(server, images, in_process):
    response = server.v1(list(images.values()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1"
    assert body["class_names"] == ["bike", "ship"]
    expected = in_process.predict(list(images.values()))
    assert len(body["predictions"]) == len(expected) == len(images)
    for got, want in zip(body["predictions"], expected, strict=True):
        assert set(got) == {
            "class_name",
            "class_id",
            "score",
            "probabilities",
            "ood_score",
            "unknown",
        }
        assert (got["class_name"], got["class_id"]) == (want.class_name, want.class_id)
        assert (got["ood_score"], got["unknown"]) == (pytest.approx(want.ood_score), want.unknown)
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)
        assert sum(got["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert got["score"] == pytest.approx(max(got["probabilities"]), abs=1e-6)


def test_v1_accepts_the_named_input_row_format(server, images):
    image = images["ship"]
    named = server.client.post(
        f"/v1/models/{MODEL}:predict", json={"instances": [{"images": {"b64": b64(image)}}]}
    )
    assert named.status_code == 200
    assert named.json()["predictions"] == server.v1([image]).json()["predictions"]


def test_v2_infer_metadata_and_readiness(server, images, in_process):
    tensor = {
        "name": "images",
        "shape": [2],
        "datatype": "BYTES",
        "data": [b64(images["bike"]), b64(images["ship"])],
    }
    response = server.client.post(
        f"/v2/models/{MODEL}/infer", json={"id": "req-7", "inputs": [tensor]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, "1", "req-7")
    outputs = {output["name"]: output for output in body["outputs"]}
    expected = in_process.predict([images["bike"], images["ship"]])
    assert outputs["class_name"]["data"] == [p.class_name for p in expected]
    assert outputs["class_id"]["data"] == [p.class_id for p in expected]
    assert outputs["probabilities"]["shape"] == [2, 2]
    assert outputs["probabilities"]["data"] == pytest.approx(
        [v for p in expected for v in p.probabilities], abs=1e-5
    )
    assert outputs["class_names"]["data"] == ["bike", "ship"]
    assert outputs["unknown"]["datatype"] == "BOOL"
    assert outputs["unknown"]["data"] == [p.unknown for p in expected]

    metadata = server.client.get(f"/v2/models/{MODEL}").json()
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"] for o in metadata["outputs"]} == set(outputs)
    assert server.client.get(f"/v2/models/{MODEL}/ready").json()["ready"] is True
    assert server.client.get("/v2/health/live").status_code == 200
    assert server.client.get(f"/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}


def test_v2_versioned_routes_answer_for_the_served_version_only(server, images):
    body = {
        "inputs": [
            {"name": "images", "shape": [1], "datatype": "BYTES", "data": [b64(images["bike"])]}
        ]
    }
    plain = server.client.post(f"/v2/models/{MODEL}/infer", json=body)
    versioned = server.client.post(f"/v2/models/{MODEL}/versions/1/infer", json=body)
    assert versioned.status_code == 200, versioned.text
    assert versioned.json()["outputs"] == plain.json()["outputs"]
    metadata = server.client.get(f"/v2/models/{MODEL}/versions/1")
    assert metadata.json() == server.client.get(f"/v2/models/{MODEL}").json()
    assert server.client.get(f"/v2/models/{MODEL}/versions/1/ready").json()["ready"] is True
    other = server.client.post(f"/v2/models/{MODEL}/versions/7/infer", json=body)
    assert other.status_code == 404
    assert other.json()["error"] == (
        f"version 7 of {MODEL} is not served; this server serves version 1"
    )


def test_v2_over_grpc_takes_raw_bytes(server, images, in_process):
    import asyncio

    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def infer():
        async with InferenceGRPCClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
            tensor = InferInput("images", [1], "BYTES", [images["ship"]])
            return await client.infer(InferRequest(MODEL, [tensor]))

    response = asyncio.run(infer())
    assert response.model_version == "1"
    outputs = {output.name: output.as_numpy() for output in response.outputs}
    expected = in_process.predict([images["ship"]])[0]
    assert outputs["class_id"].tolist() == [expected.class_id]
    assert outputs["probabilities"].reshape(-1).tolist() == pytest.approx(
        expected.probabilities, abs=1e-5
    )


def test_prometheus_metrics_count_requests(server, images):
    server.v1([images["bike"]])
    metrics = server.client.get("/metrics").text
    assert 'request_predict_seconds_count{model_name="alexnet"}' in metrics


def test_micro_batcher_groups_concurrent_requests(server, images):
    """Sixteen one-image requests at once are served in fewer than sixteen model calls."""
    before = _batch_sizes(server)
    barrier = threading.Barrier(16)
    results = []

    def one():
        with httpx.Client(base_url=server.url, timeout=60) as client:
            barrier.wait()
            body = {"instances": [{"b64": b64(images["bike"])}]}
            results.append(client.post(f"/v1/models/{MODEL}:predict", json=body).status_code)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 16
    after = _batch_sizes(server)
    assert after["sum"] - before["sum"] == 16
    assert after["count"] - before["count"] < 16


def _batch_sizes(server):
    """The batch-size histogram's sum (images) and count (model calls) from /metrics."""
    values = {}
    for line in server.client.get("/metrics").text.splitlines():
        for key in ("sum", "count"):
            if line.startswith(f'batch_size_images_{key}{{model_name="{MODEL}"}}'):
                values[key] = float(line.split()[-1])
    return values


PNG = encode("PNG")
BAD_REQUESTS = [
    ("invalid JSON", "v1", b"{not json", 400, "Unrecognized request format"),
    ("missing instances", "v1", {"inputs": []}, 400, "instances: missing"),
    ("instances not a list", "v1", {"instances": "abc"}, 400, "instances: must be a list"),
    ("body not an object", "v1", [1, 2], 400, "request body: expected a JSON object"),
    (
        "bad base64",
        "v1",
        {"instances": [{"b64": "@@not base64@@"}]},
        400,
        "instances[0]: not valid base64",
    ),
    ("no b64 key", "v1", {"instances": [{"data": "x"}]}, 400, 'instances[0]: expected {"b64"'),
    (
        "b64 not a string",
        "v1",
        {"instances": [{"b64": 7}]},
        400,
        "instances[0]: b64 must be a string",
    ),
    (
        "not an image",
        "v1",
        {"instances": [{"b64": b64(PNG)}, {"b64": b64(b"plain text")}]},
        400,
        "instances[1]: cannot be decoded",
    ),
    (
        "truncated image",
        "v1",
        {"instances": [{"b64": b64(PNG[:40])}]},
        400,
        "instances[0]: cannot be decoded",
    ),
    ("empty batch", "v1", {"instances": []}, 400, "instances: empty"),
    (
        "too many instances",
        "v1",
        {"instances": [{"b64": b64(PNG)}] * 65},
        400,
        "65 images exceed the limit of 64",
    ),
    (
        "v2 wrong datatype",
        "v2",
        {"inputs": [{"name": "images", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
        400,
        "datatype must be BYTES",
    ),
    (
        "v2 shape larger than the data",
        "v2",
        {"inputs": [{"name": "images", "shape": [5], "datatype": "BYTES", "data": [b64(PNG)]}]},
        400,
        "shape: [5] does not match its 1 data entries; send [1]",
    ),
    (
        "v2 shape of three dimensions",
        "v2",
        {
            "inputs": [
                {"name": "images", "shape": [1, 2, 3], "datatype": "BYTES", "data": [b64(PNG)]}
            ]
        },
        400,
        "shape: [1, 2, 3] does not match",
    ),
    (
        "v2 empty shape",
        "v2",
        {"inputs": [{"name": "images", "shape": [], "datatype": "BYTES", "data": [b64(PNG)]}]},
        400,
        "shape: [] does not match",
    ),
    (
        "v2 wrong input name",
        "v2",
        {"inputs": [{"name": "pixels", "shape": [1], "datatype": "BYTES", "data": [b64(PNG)]}]},
        400,
        "the model's input is named 'images'",
    ),
    (
        "v2 two inputs",
        "v2",
        {"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}] * 2},
        400,
        "expected exactly one BYTES input",
    ),
    (
        "v2 empty batch",
        "v2",
        {"inputs": [{"name": "images", "shape": [0], "datatype": "BYTES", "data": []}]},
        400,
        "empty",
    ),
    (
        "v2 not an image",
        "v2",
        {
            "inputs": [
                {
                    "name": "images",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [b64(b"GIF89a nonsense")],
                }
            ]
        },
        400,
        "data[0]: cannot be decoded",
    ),
    ("v2 invalid JSON", "v2", b"{bad", 422, "JSON decode error"),
    (
        "v2 binary extension, data missing",
        "v2",
        b'{"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES",'
        b' "parameters": {"binary_data_size": 9}}]}',
        400,
        "inputs[0].parameters.binary_data_size: 9 bytes declared, 0 sent",
    ),
    (
        "v2 number not string",
        "v2",
        {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES", "data": [5]}]},
        400,
        "data[0]: expected a base64 string",
    ),
]


@pytest.mark.parametrize(
    ("case", "protocol", "body", "status", "message"),
    BAD_REQUESTS,
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_stays_healthy(
    server, images, case, protocol, body, status, message
):
    path = f"/v1/models/{MODEL}:predict" if protocol == "v1" else f"/v2/models/{MODEL}/infer"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if "binary" in case:
        headers["inference-header-content-length"] = str(len(content))
    response = server.client.post(path, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert message in (response.json().get("error") or response.text)
    assert server.v1([images["bike"]]).status_code == 200


def test_v2_without_a_content_type_is_read_as_json(server, images):
    """As tritonclient.http sends it: JSON, but no Content-Type header."""
    body = {
        "inputs": [
            {"name": "images", "shape": [1], "datatype": "BYTES", "data": [b64(images["bike"])]}
        ]
    }
    plain = server.client.post(f"/v2/models/{MODEL}/infer", json=body)
    bare = server.client.post(f"/v2/models/{MODEL}/infer", content=json.dumps(body).encode())
    assert "content-type" not in bare.request.headers
    assert bare.status_code == 200, bare.text
    assert bare.json()["outputs"] == plain.json()["outputs"]


def test_tritonclient_with_its_defaults_gets_the_v1_answer(server, images):
    """The reference Open Inference Protocol client, called as its documentation shows:
    tensors in the binary extension (its default), all outputs, no extra headers."""
    import numpy as np
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata()["extensions"] == []  # the repository API is closed
    metadata = client.get_model_metadata(MODEL)
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]

    pictures = [images["bike"], images["ship"]]
    v1 = server.v1(pictures).json()["predictions"]
    for binary_data in (True, False):
        tensor = triton.InferInput("images", [2], "BYTES")
        encoded = np.array([b64(picture).encode() for picture in pictures], dtype=object)
        tensor.set_data_from_numpy(encoded, binary_data=binary_data)
        result = client.infer(MODEL, [tensor])
        # JSON outputs come back as str (the server answers without the binary extension)
        assert [str(name) for name in result.as_numpy("class_name")] == [
            p["class_name"] for p in v1
        ]
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), [p["probabilities"] for p in v1], atol=1e-5
        )
    raw = triton.InferInput("images", [1], "BYTES")
    raw.set_data_from_numpy(np.array([images["bike"]], dtype=object))
    with pytest.raises(InferenceServerException, match="element 0 is not UTF-8"):
        client.infer(MODEL, [raw])
    assert client.is_server_ready()


def test_a_request_of_many_images_is_answered_whole_and_in_order(server, images, in_process):
    pictures = list(images.values()) * 10  # beyond one batch: the batcher cuts it in turns
    assert len(pictures) > 8
    answer = server.v1(pictures).json()["predictions"]
    expected = in_process.predict(pictures)
    assert [p["class_id"] for p in answer] == [p.class_id for p in expected]
    assert [p["probabilities"] for p in answer] == [
        pytest.approx(p.probabilities, abs=1e-5) for p in expected
    ]


def test_pixels_across_a_request_are_bounded_before_decoding(server):
    headers_only = [png_header(6000, 6000)] * 12  # 36 MP each, none decodable: 432 MP
    response = server.v1(headers_only)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "instances: 432,000,000 pixels across the request exceed the limit of 400,000,000; "
        "send fewer or smaller images per request"
    )


def test_a_silent_or_stalled_client_is_cut_off(server, images):
    """The module's server gives clients 3 s (--request-timeout) for headers and for body."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as silent:
        assert silent.recv(100) == b""  # closed by the server, not by the 30 s socket timeout
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as trickle:
        trickle.sendall(b"POST /v1/models/alexnet:predict HTT")
        assert trickle.recv(100) == b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as stalled:
        stalled.sendall(
            b"POST /v1/models/alexnet:predict HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"inst'
        )
        answer = b""
        while chunk := stalled.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(body)["error"] == (
        "request body: 6 bytes arrived in 3 s, not the whole body; send it at once"
    )
    assert server.v1([images["bike"]]).status_code == 200


@pytest.mark.parametrize(
    ("instance", "reason"),
    [("not base64!", "instances[0]: not valid base64"), (b64(b"hello"), "Unknown image file")],
)
def test_a_refused_request_logs_one_line_without_a_traceback(server, instance, reason):
    before = server.log_text()
    response = server.client.post(
        f"/v1/models/{MODEL}:predict", json={"instances": [{"b64": instance}]}
    )
    assert response.status_code == 400
    time.sleep(0.5)  # the log line follows the answer
    added = server.log_text()[len(before) :].splitlines()
    assert "Traceback" not in "\n".join(added)
    refused = [line for line in added if "Refused: InvalidInput" in line]
    assert len(refused) == 1 and reason in refused[0]
    # Nothing else but the access log's line: TensorFlow's own warnings stay out.
    assert len(added) <= 2, added


def test_unknown_model_is_404(server, images):
    response = server.client.post(
        "/v1/models/resnet:predict", json={"instances": [{"b64": b64(images["bike"])}]}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "Model with name resnet does not exist."


def test_oversized_body_is_413_without_being_read_whole(server, images):
    declared = server.client.post(
        f"/v1/models/{MODEL}:predict",
        content=b"x" * (20 * 1024 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert "exceed the limit of 20,971,520" in declared.json()["error"]

    def chunks():  # no content-length: the limit must hold while streaming too
        for _ in range(22):
            yield b"x" * (1024 * 1024)

    streamed = server.client.post(f"/v1/models/{MODEL}:predict", content=chunks())
    assert streamed.status_code == 413
    assert server.v1([images["bike"]]).status_code == 200


def test_decompression_bomb_is_refused_before_decoding(server):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, "PNG")  # 64 megapixels in a few kilobytes
    assert len(buffer.getvalue()) < 100_000
    response = server.v1([buffer.getvalue()])
    assert response.status_code == 400
    assert "64,000,000 pixels exceed the limit" in response.json()["error"]


def test_no_endpoint_loads_or_unloads_models_by_name(server, images):
    for action in ("load", "unload"):
        response = server.client.post(f"/v2/repository/models/{MODEL}/{action}")
        assert response.status_code == 403
    traversal = server.client.post(
        "/v1/models/..%2F..%2Fetc%2Fpasswd:predict", json={"instances": [{"b64": b64(PNG)}]}
    )
    assert traversal.status_code == 404
    assert server.v1([images["bike"]]).json()["model_version"] == "1"


def _fuzz_request(rng, image):
    """One malformed request: broken JSON, wrong types, corrupted images, odd headers."""
    path = rng.choice([f"/v1/models/{MODEL}:predict", f"/v2/models/{MODEL}/infer"])
    good = b64(image)
    corrupt = bytearray(image)
    for _ in range(rng.randint(1, 20)):
        corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
    values = [
        None,
        True,
        -1,
        3.5,
        "",
        "x" * rng.randint(1, 300),
        [],
        {},
        [good],
        {"b64": good},
        b64(bytes(corrupt)),
        b64(image[: rng.randint(0, len(image))]),
        good[:-3] + "!!!",
    ]
    choice = rng.randrange(6)
    if choice == 0:
        content = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
    elif choice == 1:
        content = json.dumps(
            {"instances": [{"b64": rng.choice(values)}] * rng.randint(0, 3)}
        ).encode()
    elif choice == 2:
        content = json.dumps({"instances": rng.choice(values)}).encode()
    elif choice == 3:
        tensor = {
            "name": rng.choice(["images", "x"]),
            "shape": rng.choice([[1], [2], [], [-1]]),
            "datatype": rng.choice(["BYTES", "FP32", "INT8", "nonsense"]),
            "data": rng.choice(values),
        }
        content = json.dumps(
            {"inputs": rng.choice([[tensor], tensor, [tensor, tensor], None])}
        ).encode()
    elif choice == 4:
        content = json.dumps({"instances": [{"b64": b64(bytes(corrupt))}]}).encode()
    else:
        body = json.dumps({"instances": [{"b64": good}]}).encode()
        content = body[: rng.randint(0, len(body) - 1)]
    headers = {
        "content-type": rng.choice(
            ["application/json", "text/plain", "application/octet-stream", "image/jpeg"]
        )
    }
    if rng.random() < 0.1:
        headers["inference-header-content-length"] = str(rng.randint(-5, 500))
    return path, content, headers


def test_fuzz_1000_malformed_requests_no_5xx_and_bounded_memory(server, images):
    rng = random.Random(1234)
    statuses = {}
    rss = []
    for index in range(1000):
        path, content, headers = _fuzz_request(rng, images["bike"])
        response = server.client.post(path, content=content, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (path, content[:200], headers, response.text)
        if index in (199, 999):
            rss.append(server.rss_bytes())
    assert server.client.get("/v2/health/ready").status_code == 200
    assert server.v1([images["bike"]]).status_code == 200
    # The first 200 requests warm every code path; the next 800 may not keep growing memory.
    assert rss[1] - rss[0] < 64 * 1024 * 1024, (rss, statuses)
    assert sum(statuses.get(code, 0) for code in (400, 404, 413, 422)) >= 900, statuses


def test_predict_cli_over_both_protocols_and_in_process(server, serving_dir, demo_dir):
    files = [str(path) for path in sorted(demo_dir.glob("*/*.jpg"))[:2]]
    lines = {}
    for protocol in ("v1", "v2"):
        result = run_cli(
            "predict", *files, "--url", server.url, "--protocol", protocol, "--top-k", "2"
        )
        assert result.returncode == 0, result.stderr[-2000:]
        lines[protocol] = result.stdout.splitlines()
    local = run_cli("predict", *files, "--serving-dir", str(serving_dir))
    assert local.returncode == 0, local.stderr[-2000:]
    assert lines["v1"] == lines["v2"]
    first = lines["v1"][0]
    assert first.startswith(f"{files[0]}: ") and first.endswith("model version 1)")
    assert len(lines["v1"]) == 6  # per file: the answer and its two ranked classes
    assert local.stdout.splitlines() == [lines["v1"][0], lines["v1"][3]]


def test_predict_over_http_loads_neither_tensorflow_nor_tfx(server, demo_dir):
    """The client is light: a prediction costs the request, not a TensorFlow import."""
    image = str(sorted(demo_dir.glob("ship/*.jpg"))[0])
    check = (
        "import sys; from click.testing import CliRunner; from pipelines.cli import main; "
        f"result = CliRunner().invoke(main, ['predict', {image!r}, '--url', {server.url!r}]); "
        "print(result.output); "
        "print('loaded:', sorted(m for m in ('tensorflow', 'tfx', 'kserve') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "model version 1)" in result.stdout
    assert "loaded: []" in result.stdout
    assert result.stderr == ""  # nothing from the libraries either


def test_predict_cli_errors_are_one_line(server, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_bytes(b"not an image")
    bad = run_cli("predict", str(text), "--url", server.url)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"Error: {text}: cannot be decoded: unknown image format; "
        "pass JPEG, PNG, BMP, GIF, WEBP files"
    )
    image = tmp_path / "ok.png"
    image.write_bytes(PNG)
    down = run_cli("predict", str(image), "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1
    assert "cannot reach the model server" in down.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("width", "expected"),
    [(7000, "49,000,000 pixels exceed"), (20000, "400,000,000 pixels exceed")],
)
def test_predict_refuses_a_decompression_bomb_in_one_line(server, tmp_path, width, expected):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(width, width))
    result = run_cli("predict", str(bomb), "--url", server.url)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert str(bomb) in line and expected in line and "limit of 40,000,000" in line


def test_serve_on_a_taken_or_impossible_port_is_a_short_error(serving_dir):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--serving-dir", serving_dir, "--port", port)
    assert result.returncode == 1 and "Serving" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in line and "another --port" in line
    result = run_cli("serve", "--serving-dir", serving_dir, "--port", 70000)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 3 and "'--port': 70000 is not in the range" in lines[-1]


def test_serve_without_a_pushed_model_says_what_to_do(tmp_path):
    result = run_cli("serve", "--serving-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: no complete model version under {tmp_path / MODEL}: run the pipeline "
        "(alexnet-tfx run) to push one, or pass --serving-dir/--model-name"
    )


class Load(threading.Thread):
    """Steady one-image requests from 4 clients; records every status and served version."""

    def __init__(self, url, image):
        super().__init__(daemon=True)
        self.url, self.image = url, image
        self.stop = threading.Event()
        self.answers = []  # (sent, answered, status, version)
        self.lock = threading.Lock()

    def client_loop(self):
        body = {"instances": [{"b64": b64(self.image)}]}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                sent = time.time()
                try:
                    response = client.post(f"/v1/models/{MODEL}:predict", json=body)
                    version = response.json().get("model_version") if response.is_success else None
                    answer = (sent, time.time(), response.status_code, version)
                except httpx.HTTPError as error:
                    answer = (sent, time.time(), repr(error), None)
                with self.lock:
                    self.answers.append(answer)
                time.sleep(0.02)

    def run(self):
        workers = [threading.Thread(target=self.client_loop) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def first_time_serving(self, version):
        return min((t for _, t, _, v in self.answers if v == version), default=None)

    def versions_sent_after(self, moment):
        """Versions that answered requests sent after MOMENT. A request already in flight
        then may still finish on the old version; one sent later must not."""
        return {v for sent, _, _, v in self.answers if sent > moment}

    def rate(self):
        return len(self.answers) / (self.answers[-1][1] - self.answers[0][1])

    def failures(self):
        return [a for a in self.answers if a[2] != 200]


def test_hot_reload_under_load(server, serving_dir, images):
    base = serving_dir / MODEL
    load = Load(server.url, images["ship"])
    load.start()
    time.sleep(2)
    pushed = time.time()
    publish(base / "1", base, 2)
    deadline = pushed + 30
    while time.time() < deadline and load.first_time_serving("2") is None:
        time.sleep(0.2)
    switched = load.first_time_serving("2")

    # A version that cannot load is logged and skipped; version 2 keeps serving.
    (base / ".tmp-3").mkdir()
    (base / ".tmp-3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    os.rename(base / ".tmp-3", base / "3")
    time.sleep(3)
    load.stop.set()
    load.join()

    assert load.rate() >= 20, f"only {load.rate():.1f} requests/s"
    assert load.failures() == []
    assert switched is not None, "version 2 not served within 30 s:\n" + server.log_text()[-3000:]
    # No flapping back, and broken version 3 never answered.
    assert load.versions_sent_after(switched) == {"2"}
    assert (
        "model version 3 at" in server.log_text()
        and "failed to load; still serving version 2" in server.log_text()
    )
    assert server.v1([images["bike"]]).json()["model_version"] == "2"

    publish(base / "1", base, 4)  # a good version after a broken one is picked up
    deadline = time.time() + 30
    while time.time() < deadline and server.v1([images["bike"]]).json()["model_version"] != "4":
        time.sleep(0.5)
    assert server.v1([images["bike"]]).json()["model_version"] == "4"


def test_rollback_under_load_switches_back_with_no_failed_request(server, serving_dir, images):
    """Versions 1 to 4 are pushed (3 is broken) and 4 is served; roll back to 2."""
    base = serving_dir / MODEL
    assert server.v1([images["bike"]]).json()["model_version"] == "4"
    load = Load(server.url, images["ship"])
    load.start()
    time.sleep(2)
    started = time.time()
    result = run_cli("rollback", "--serving-dir", serving_dir, "--to-version", "2")
    assert result.returncode == 0, result.stderr
    while time.time() < started + 30 and load.first_time_serving("2") is None:
        time.sleep(0.2)
    time.sleep(2)
    load.stop.set()
    load.join()

    assert load.rate() >= 20
    assert load.failures() == []
    switched = load.first_time_serving("2")
    assert switched is not None and switched - started <= 30, server.log_text()[-3000:]
    assert load.versions_sent_after(switched) == {"2"}
    assert sorted(p.name for p in base.iterdir()) == [".retired", "1", "2"]
    assert sorted(p.name for p in (base / ".retired").iterdir()) == ["3", "4"]
    assert "now serving version 2 (was 4)" in server.log_text()


def test_rollback_refusals_are_one_line_and_change_nothing(serving_dir, tmp_path):
    base = serving_dir / MODEL
    before = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
    missing = run_cli("rollback", "--serving-dir", serving_dir, "--to-version", "9")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"Error: --to-version 9: no such version under {base}; pushed versions: 1, 2"
    ]
    (tmp_path / MODEL / "5").mkdir(parents=True)
    (tmp_path / MODEL / "5" / "saved_model.pb").write_bytes(b"")
    alone = run_cli("rollback", "--serving-dir", tmp_path)
    assert alone.returncode == 1
    assert "nothing to roll back to: version 5 is the only one" in alone.stderr
    assert (tmp_path / MODEL / "5").exists()
    assert sorted(str(p.relative_to(base)) for p in base.rglob("*")) == before


def test_a_version_number_is_never_reused_after_a_rollback(tmp_path):
    from serving.layout import next_version

    base = tmp_path / MODEL
    for version in ("1", ".retired/2", ".retired/3"):
        (base / version).mkdir(parents=True)
        (base / version / "saved_model.pb").write_bytes(b"")
    assert next_version(str(base)) == 4


@pytest.fixture(scope="module")
def logging_server(serving_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("request-log")
    running = Server(
        serving_dir,
        tmp_path_factory.mktemp("server") / "server.log",
        "--log-requests",
        logs,
        "--log-sample",
        "1.0",
        "--log-max-mb",
        "0.1",
    )
    yield running, logs
    running.stop()


def test_served_requests_are_sampled_to_images_and_json_lines(logging_server, images):
    import json

    server, logs = logging_server
    answer = server.v1([images["bike"], images["ship"]]).json()
    index = logs / "requests.jsonl"
    deadline = time.time() + 30  # written off the request path: wait for both lines
    while time.time() < deadline and (
        not index.exists() or len(index.read_text().splitlines()) < 2
    ):
        time.sleep(0.1)
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [line["class_name"] for line in lines] == [
        p["class_name"] for p in answer["predictions"]
    ]
    for line in lines:
        assert (logs / line["file"]).read_bytes() in (images["bike"], images["ship"])
        assert line["model_version"] == int(answer["model_version"])
        assert line["time"].startswith("20")


def test_request_log_stops_at_its_size_limit_and_says_so_once(logging_server, images):
    server, logs = logging_server
    for _ in range(30):  # ~30 x 2 images of a few KB each: past 0.1 MB
        assert server.v1([images["bike"], images["ship"]]).status_code == 200
    time.sleep(1)
    assert sum(p.stat().st_size for p in logs.iterdir()) <= 0.1 * 2**20
    assert server.log_text().count("request log in") == 1
    assert "it reached --log-max-mb (0.1 MB); requests are still served" in server.log_text()


def test_unwritable_request_log_stops_serve_at_start_up(serving_dir, tmp_path):
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "logs"
    result = run_cli(
        "serve", "--serving-dir", serving_dir, "--port", free_port(), "--log-requests", target
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: --log-requests {target}: cannot write there (Not a directory); pass a folder "
        "this user can write to"
    )


def test_full_disk_never_fails_a_request_and_logging_stops_once(tmp_path, caplog):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    from contract.prediction import Prediction
    from serving.request_log import RequestLog

    (tmp_path / "requests.jsonl").symlink_to("/dev/full")
    log = RequestLog(str(tmp_path), sample=1.0, max_bytes=2**20)
    prediction = Prediction("bike", 0, 0.9, [0.9, 0.1], 1.5, False, 1, ("bike", "ship"))
    with caplog.at_level("WARNING", logger="serving.request_log"):
        for _ in range(3):
            log.submit([b"\xff\xd8 jpeg bytes"], [prediction])  # returns at once
        log.close()
    assert "No space left on device" in log.stopped_reason
    assert [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()] == [
        f"request log in {tmp_path} stopped: writing failed: No space left on device; "
        "requests are still served"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.jsonl"]  # no orphan image


def test_a_pinned_version_is_served_and_a_missing_one_is_named(serving_dir):
    from serving.served_model import ServedModel

    assert ServedModel.latest(str(serving_dir), MODEL, version=1).version == 1
    with pytest.raises(FileNotFoundError, match="--version 7: no such complete version"):
        ServedModel.latest(str(serving_dir), MODEL, version=7)


def test_a_phone_photo_is_served_upright(server, images):
    """EXIF orientation 6 (a phone held upright): answered as the upright picture is."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = io.BytesIO()
    Image.open(io.BytesIO(images["bike"])).save(tagged, "JPEG", exif=exif.tobytes())
    # The pixels as stored, decoded as the model decodes them, then turned by hand.
    stored = tf.io.decode_image(tagged.getvalue(), channels=3).numpy()
    upright, sideways = sensor_png(np.rot90(stored, -1)), sensor_png(stored)
    answer = server.v1([tagged.getvalue(), upright, sideways]).json()
    turned, by_hand, as_stored = (p["probabilities"] for p in answer["predictions"])
    assert turned == pytest.approx(by_hand, abs=1e-5)
    assert by_hand != pytest.approx(as_stored, abs=1e-5)  # the model sees the difference


def sensor_png(pixels) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_version_exported_before_an_optional_field_still_answers(
    serving_dir, images, tmp_path, monkeypatch
):
    """A field added to the contract after a version was pushed is `optional`: that version's
    answers carry it as None (null in V1, left out of V2), and every other field as before."""
    import dataclasses

    from contract import prediction
    from serving.served_model import ServedModel

    def without_score(outputs):
        outputs.pop(prediction.SCORE.name)
        return outputs

    source = serving_dir / MODEL / "1"
    older = resave(source, tmp_path / "1", without_score)
    batch = list(images.values())[:2]
    expected = ServedModel(1, str(source)).predict(batch)
    with pytest.raises(ValueError, match="the model's answer lacks score"):
        ServedModel(1, str(older)).predict(batch)  # while the field is required
    later = tuple(
        dataclasses.replace(field, optional=True) if field == prediction.SCORE else field
        for field in prediction.OUTPUTS
    )
    monkeypatch.setattr(prediction, "OUTPUTS", later)
    answered = ServedModel(1, str(older)).predict(batch)
    assert [answer.score for answer in answered] == [None, None]
    assert [dataclasses.replace(answer, score=None) for answer in expected] == answered
    assert prediction.v1_body(answered)["predictions"][0][prediction.SCORE.name] is None
    v2 = {"model_version": "1", "outputs": prediction.v2_tensors(answered)}
    assert prediction.SCORE.name not in {tensor["name"] for tensor in v2["outputs"]}
    assert prediction.from_v2(v2) == answered
