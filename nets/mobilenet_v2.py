"""MobileNet V2 under its short import path, `nets.mobilenet_v2`.

The implementation lives at slim's path, `nets/mobilenet/mobilenet_v2.py`;
this module re-exports its public names, so both paths give the same
functions and the same `V2_DEF` dict.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
from nets.mobilenet.mobilenet_v2 import V2_DEF  # noqa: F401
from nets.mobilenet.mobilenet_v2 import V2_DEF_GROUP_NORM  # noqa: F401
from nets.mobilenet.mobilenet_v2 import expand_input  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_base  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_base_group_norm  # noqa: F401,E501
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_035  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_050  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_075  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_100  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_130  # noqa: F401
from nets.mobilenet.mobilenet_v2 import mobilenet_v2_140  # noqa: F401
from nets.mobilenet.mobilenet_v2 import op  # noqa: F401
from nets.mobilenet.mobilenet_v2 import training_scope  # noqa: F401
from nets.mobilenet.mobilenet_v2 import wrapped_partial  # noqa: F401

__all__ = ['training_scope', 'mobilenet_base', 'mobilenet', 'V2_DEF']
