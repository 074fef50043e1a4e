"""The upstream import path of MobileNet V2: `nets.mobilenet.mobilenet_v2`.

Detection and segmentation code imports V2 from here. The one
implementation is `nets/mobilenet_v2.py`; this module replaces itself in
`sys.modules` with that module, so both import paths give the same module
object (and `V2_DEF` is literally the same dict under both).
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import sys

from nets import mobilenet_v2 as _implementation

sys.modules[__name__] = _implementation
