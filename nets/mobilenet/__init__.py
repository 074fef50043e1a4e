"""slim's `nets/mobilenet/` package: the table-driven MobileNet builder.

* `nets.mobilenet.mobilenet`: the generic builder (`mobilenet_base`,
  `mobilenet`, `training_scope`, `op`, `depth_multiplier`).
* `nets.mobilenet.conv_blocks`: the inverted-residual block and helpers
  (`expanded_conv`, `squeeze_excite`, `split_separable_conv2d`).
* `nets.mobilenet.mobilenet_v2`: MobileNet V2 (also `nets.mobilenet_v2`).
* `nets.mobilenet.mobilenet_v3`: MobileNet V3 and MobileNet-EdgeTPU.
* `nets.mobilenet.universal_blocks`: the blocks of MobileNet V4 (UIB,
  FusedIB, Mobile MQA, layer scale).
* `nets.mobilenet.mobilenet_v4`: MobileNet V4 (Conv-S/M/L, Hybrid-M/L).
"""
