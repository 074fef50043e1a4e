"""Which keras.applications model matches which slim network, and what is run.

Kept free of TensorFlow imports, so the benchmark driver can check its flags
without loading TensorFlow.
"""


# nets_factory name -> (keras.applications model, alpha) with the same
# layers at the same width. Keras's MobileNetV2 keeps its last layer at 1280
# channels for alpha < 1, as the factory's mobilenet_v2_050 / _035 do
# (finegrain classification mode); the plain depth-multiplied V2 does not,
# so it has no entry here.
KERAS_EQUIVALENTS = {
    'mobilenet_v1': ('MobileNet', 1.0),
    'mobilenet_v1_075': ('MobileNet', 0.75),
    'mobilenet_v1_050': ('MobileNet', 0.5),
    'mobilenet_v1_025': ('MobileNet', 0.25),
    'mobilenet_v2': ('MobileNetV2', 1.0),
    'mobilenet_v2_140': ('MobileNetV2', 1.4),
    'mobilenet_v2_050': ('MobileNetV2', 0.5),
    'mobilenet_v2_035': ('MobileNetV2', 0.35),
    # Benchmarked only where nets_factory has them (nets.mobilenet.
    # mobilenet_v3); keras.applications has them from TF 2.4 on, so on TF
    # 1.15 their rows are ours only.
    'mobilenet_v3_large': ('MobileNetV3Large', 1.0),
    'mobilenet_v3_small': ('MobileNetV3Small', 1.0),
}

# Networks that may be missing from nets_factory or keras.applications: the
# benchmark skips what the running stack lacks and says so.
OPTIONAL_MODELS = ('mobilenet_v3_large', 'mobilenet_v3_small')

IMPLEMENTATIONS = ('ours', 'keras')

# Measurement -> (task, the input or export format it uses).
MEASUREMENTS = {
    'train_synthetic': ('train', 'synthetic'),
    'train_tfrecord': ('train', 'tfrecord'),
    'infer_checkpoint': ('infer', 'checkpoint'),
    'infer_frozen': ('infer', 'frozen'),
    'infer_tflite': ('infer', 'tflite'),
    # A bare session.run(train_op) loop on the TFRecords with the dataset's
    # own head (the classes the training script gives the network), the
    # baseline of the script's per-step overhead.
    'train_loop': ('train', 'tfrecord'),
    # ours: train_image_classifier.py as a subprocess; keras: model.fit.
    'train_script': ('train_script', 'tfrecord'),
    # Full-integer (int8) TFLite, uint8 input and output.
    'infer_tflite_int8': ('infer', 'tflite_int8'),
    # The frozen graph converted by tf2onnx, run by ONNX Runtime.
    'infer_onnx': ('infer', 'onnx'),
}
MEASUREMENT_ORDER = ('train_synthetic', 'train_tfrecord', 'train_loop',
                     'train_script', 'infer_checkpoint', 'infer_frozen',
                     'infer_tflite', 'infer_tflite_int8', 'infer_onnx')

# nets_factory name -> (library, model constructor, keyword arguments) of the
# PyTorch network with the same layers, for the optional PyTorch column
# (benchmarks/pytorch_column.py). torchvision's MobileNetV2 keeps its last
# layer at 1280 channels below width 1.0, as ours does; timm's MobileNetV1
# exists at widths 1.0 and 1.25 only.
PYTORCH_EQUIVALENTS = {
    'mobilenet_v1': ('timm', 'mobilenetv1_100', {}),
    'mobilenet_v2': ('torchvision', 'mobilenet_v2', {}),
    'mobilenet_v2_140': ('torchvision', 'mobilenet_v2', {'width_mult': 1.4}),
    'mobilenet_v2_050': ('torchvision', 'mobilenet_v2', {'width_mult': 0.5}),
    'mobilenet_v2_035': ('torchvision', 'mobilenet_v2', {'width_mult': 0.35}),
    'mobilenet_v3_large': ('torchvision', 'mobilenet_v3_large', {}),
    'mobilenet_v3_small': ('torchvision', 'mobilenet_v3_small', {}),
    'mobilenet_v4_conv_small': ('timm', 'mobilenetv4_conv_small', {}),
    'mobilenet_v4_conv_medium': ('timm', 'mobilenetv4_conv_medium', {}),
    'mobilenet_v4_conv_large': ('timm', 'mobilenetv4_conv_large', {}),
    'mobilenet_v4_hybrid_medium': ('timm', 'mobilenetv4_hybrid_medium', {}),
    'mobilenet_v4_hybrid_large': ('timm', 'mobilenetv4_hybrid_large', {}),
}

# Every network the benchmark knows: those with a keras.applications
# equivalent (ours beside Keras), and those with only a PyTorch one (V4).
BENCHMARKED_MODELS = tuple(sorted(set(KERAS_EQUIVALENTS) |
                                  set(PYTORCH_EQUIVALENTS)))

# PyTorch's memory layouts, each a column: NCHW is its default,
# channels_last (NHWC) the one its oneDNN convolutions prefer on CPU.
PYTORCH_IMPLEMENTATIONS = ('pytorch_nchw', 'pytorch_channels_last')
# Our measurement -> the PyTorch task that matches it: the training step on
# a synthetic batch, and eager inference (torch.inference_mode), which sits
# beside our frozen graph.
PYTORCH_MEASUREMENTS = {'train_synthetic': 'train', 'infer_frozen': 'infer'}
