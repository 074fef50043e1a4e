"""In-process A/B of one training step's time: batch-norm kind, inter-op threads.

Usage (repo root): python benchmarks/results/experiments/train_step_ab.py
    MODEL FUSED INTER_OP   e.g. mobilenet_v2 false 2
FUSED: true / false / none (slim picks); INTER_OP: inter-op threads (intra 2).
Prints the median of 8 steps at batch 16, 224x224, after 3 untimed ones.
"""
import os
import sys
import time

sys.path.insert(0, os.getcwd())
from nets import tf_compat  # noqa: F401,E402  (before tf_slim)
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
import tf_slim as slim  # noqa: E402

from nets import nets_factory  # noqa: E402

model, fused, inter_op = sys.argv[1], sys.argv[2], int(sys.argv[3])
fused = {'true': True, 'false': False, 'none': None}[fused]
with tf.Graph().as_default():
  images = tf.constant(np.random.rand(16, 224, 224, 3).astype(np.float32))
  labels = tf.constant(np.random.randint(0, 6, 16))
  network_fn = nets_factory.get_network_fn(model, num_classes=6,
                                           is_training=True)
  with slim.arg_scope([slim.batch_norm], fused=fused):
    logits, _ = network_fn(images)
  loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
  optimizer = tf.train.RMSPropOptimizer(0.01, decay=0.9, momentum=0.9,
                                        epsilon=1.0)
  with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
    train_op = optimizer.minimize(
        loss, global_step=tf.train.get_or_create_global_step())
  config = tf.ConfigProto(intra_op_parallelism_threads=2,
                          inter_op_parallelism_threads=inter_op)
  with tf.Session(config=config) as sess:
    sess.run(tf.global_variables_initializer())
    for _ in range(3):
      sess.run(train_op)
    times = []
    for _ in range(8):
      start = time.time()
      sess.run(train_op)
      times.append(time.time() - start)
    step = np.median(times)
    print('%s fused=%s inter_op=%d: %.3f s per step, %.1f images/s' %
          (model, fused, inter_op, step, 16 / step))
