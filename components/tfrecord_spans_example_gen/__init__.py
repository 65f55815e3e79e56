from components.tfrecord_spans_example_gen.component import TFRecordSpansExampleGen

__all__ = ["TFRecordSpansExampleGen"]
