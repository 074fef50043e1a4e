"""From a checkpoint to something an app or a server runs.

* `inference_graph`: the one function that builds a network's inference
  graph (used by every export path and by classify_image.py), the class
  count of a dataset, and restoring (optionally moving-average) weights.
* `freeze`: a checkpoint to a frozen GraphDef.
* `saved_model`: a checkpoint to a SavedModel with serving signatures.
* `tflite`: a frozen GraphDef to TFLite (float, dynamic-range, full-integer
  or quantization-aware-trained uint8).
* `predictors`: run any of those model kinds on image files.
* `model_files`: which kind of model a path holds (`detect_kind`), and
  reading image files (both re-exported by `predictors`).
"""
