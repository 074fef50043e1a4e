"""Graph node names that slim's MobileNets create and consumers fetch.

Frozen graphs are read by name (`sess.run('MobilenetV2/embedding:0')`,
TFLite converters' output arrays), so these names are API.
"""

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from nets import mobilenet_v1
from nets.mobilenet import mobilenet_v2
from nets.mobilenet import mobilenet_v3


def _ops(build):
  with tf.Graph().as_default() as graph:
    build(tf.placeholder(tf.float32, (1, 224, 224, 3)))
    return {op.name: op.type for op in graph.get_operations()}


@pytest.mark.parametrize('conv_defs, scope', [
    (mobilenet_v3.V3_SMALL, 'MobilenetV3'),
    (mobilenet_v3.V3_EDGETPU, 'MobilenetEdgeTPU')])
def test_reduce_mean_pooling_is_named_reduce_mean(conv_defs, scope):
  ops = _ops(lambda x: mobilenet_v3.mobilenet(
      x, conv_defs=conv_defs, scope=scope, use_reduce_mean_for_pooling=True))
  assert ops[scope + '/Logits/ReduceMean'] == 'Mean'
  assert not [n for n in ops if 'global_pool' in n]
  assert scope + '/Logits/AvgPool' not in ops


@pytest.mark.parametrize('build, scope', [
    (mobilenet_v2.mobilenet, 'MobilenetV2'),
    (lambda x: mobilenet_v3.mobilenet(x, conv_defs=mobilenet_v3.V3_LARGE),
     'MobilenetV3')])
def test_v2_v3_head_and_identity_names(build, scope):
  ops = _ops(build)
  assert ops[scope + '/input'] == 'Identity'
  assert ops[scope + '/embedding'] == 'Identity'
  assert ops[scope + '/Logits/AvgPool'] == 'AvgPool'
  assert ops[scope + '/Logits/Squeeze'] == 'Squeeze'
  assert ops[scope + '/Logits/output'] == 'Identity'
  assert ops[scope + '/Predictions/Reshape_1'] == 'Reshape'


def test_v1_head_names():
  ops = _ops(mobilenet_v1.mobilenet_v1)
  assert ops['MobilenetV1/Logits/AvgPool_1a/AvgPool'] == 'AvgPool'
  assert ops['MobilenetV1/Logits/SpatialSqueeze'] == 'Squeeze'
  assert ops['MobilenetV1/Predictions/Reshape_1'] == 'Reshape'
  ops = _ops(lambda x: mobilenet_v1.mobilenet_v1(x, global_pool=True))
  assert ops['MobilenetV1/Logits/global_pool'] == 'Mean'


def test_embedding_is_the_last_feature_map():
  with tf.Graph().as_default() as graph:
    _, end_points = mobilenet_v2.mobilenet(
        tf.placeholder(tf.float32, (2, 96, 96, 3)))
    embedding = graph.get_tensor_by_name('MobilenetV2/embedding:0')
    assert embedding.op.inputs[0] is end_points['layer_19']
    assert embedding.get_shape().as_list() == [2, 3, 3, 1280]
