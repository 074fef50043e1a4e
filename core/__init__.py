"""What every other package builds on, and which imports nothing of theirs.

* `tf_compat`: makes tf_slim and the networks run on TensorFlow 1.15 and 2.x
  (graph mode); imported before anything that imports tf_slim.
* `param_refs`: parameter names in messages, written in backquotes, spelt
  as flags only by the entry scripts.
* `errors`: `LibraryError` and `InputError`, the bases of the errors library
  code raises for bad input.
"""
