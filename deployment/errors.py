"""The base class of the errors that library code raises for bad input.

Library modules (training/, export/, deployment/cluster.py, ...) raise
subclasses of `InputError` whose message says what was wrong and how to fix
it. They know nothing about the command line: the entry scripts catch these
errors and print them as one paragraph (`deployment.script_utils`).
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function


class InputError(ValueError):
  """Bad configuration, data or checkpoint given to library code."""
