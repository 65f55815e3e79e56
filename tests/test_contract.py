"""The prediction contract: both protocols carry every field, and read back unchanged."""

import json

import pytest

from contract import prediction
from contract.prediction import OUTPUTS, Prediction


@pytest.fixture
def predictions():
    names = ("bike", "ship", "tram")
    return [
        Prediction("ship", 1, 0.7, [0.2, 0.7, 0.1], 2.5, False, 3, names),
        Prediction("bike", 0, 0.5, [0.5, 0.25, 0.25], 9.25, True, 3, names),
    ]


def test_v1_round_trip(predictions):
    body = json.loads(json.dumps(prediction.v1_body(predictions)))
    assert set(body["predictions"][0]) == {field.name for field in OUTPUTS}
    assert body["model_version"] == "3" and body["class_names"] == ["bike", "ship", "tram"]
    assert prediction.from_v1(body) == predictions


def test_v2_round_trip(predictions):
    tensors = prediction.v2_tensors(predictions)
    body = json.loads(json.dumps({"model_version": "3", "outputs": tensors}))
    by_name = {tensor["name"]: tensor for tensor in body["outputs"]}
    assert by_name["probabilities"]["shape"] == [2, 3]
    assert by_name["class_id"] == {"name": "class_id", "shape": [2], "datatype": "INT64"} | {
        "data": [1, 0]
    }
    assert prediction.from_v2(body) == predictions


def test_v2_metadata_lists_what_responses_carry(predictions):
    metadata = prediction.v2_output_metadata(3)
    tensors = prediction.v2_tensors(predictions)
    assert [m["name"] for m in metadata] == [t["name"] for t in tensors]
    assert [m["datatype"] for m in metadata] == [t["datatype"] for t in tensors]
    assert prediction.v2_input_metadata() == [
        {"name": "images", "datatype": "BYTES", "shape": [-1]}
    ]


def test_an_older_models_answers_round_trip_without_the_optional_fields(predictions):
    """A version pushed before the out-of-distribution fields answers them as None: null in
    V1, no tensor in V2, and both read back as None."""
    import dataclasses

    older = [dataclasses.replace(p, ood_score=None, unknown=None) for p in predictions]
    v1 = json.loads(json.dumps(prediction.v1_body(older)))
    assert v1["predictions"][0]["ood_score"] is None and v1["predictions"][0]["unknown"] is None
    assert prediction.from_v1(v1) == older
    v2 = {"model_version": "3", "outputs": prediction.v2_tensors(older)}
    assert {"ood_score", "unknown"}.isdisjoint(tensor["name"] for tensor in v2["outputs"])
    assert prediction.from_v2(json.loads(json.dumps(v2))) == older
    assert prediction.record(older[0]) == {"class_name": "ship", "score": 0.7} | {
        "ood_score": None,
        "unknown": None,
    }


def test_the_unknown_answer_replaces_only_the_class(predictions):
    known, flagged = predictions
    assert known.or_unknown() is known
    answer = flagged.or_unknown()
    assert (answer.class_name, answer.class_id) == ("unknown", -1)
    assert (answer.score, answer.probabilities, answer.ood_score) == (0.5, [0.5, 0.25, 0.25], 9.25)
    older = Prediction("bike", 0, 0.9, [0.9, 0.1], None, None, 1, ("bike", "ship"))
    assert older.or_unknown() is older  # no flag: answered as it is


def test_top_k_ranks_by_probability(predictions):
    assert predictions[0].top_k(2) == [("ship", 0.7), ("bike", 0.2)]


def test_prediction_has_an_attribute_per_output_field():
    """A field is declared in OUTPUTS and on Prediction, in this one file."""
    import dataclasses

    attributes = [field.name for field in dataclasses.fields(Prediction)]
    assert attributes == [field.name for field in OUTPUTS] + ["model_version", "class_names"]
