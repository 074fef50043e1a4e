"""The upstream `nets/mobilenet/` import path of the MobileNet V2 builder.

* `nets.mobilenet.mobilenet`: the generic, table-driven MobileNet builder.
* `nets.mobilenet.conv_blocks`: the inverted-residual (`expanded_conv`) block.
* `nets.mobilenet.mobilenet_v2`: the same module object as `nets.mobilenet_v2`
  (detection and segmentation code import V2 from here).
"""
