"""`from nets import tf_compat` keeps working: the module lives in core/.

The same module object (not a copy), so its one-time set-up runs once and
`nets.tf_compat.IS_TF2` is `core.tf_compat.IS_TF2`.
"""

import sys

from core import tf_compat

sys.modules[__name__] = tf_compat
