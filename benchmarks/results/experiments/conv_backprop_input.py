"""Per-node Conv2DBackpropInput times of one traced V2 training step, ours vs Keras (see the .txt)."""
import sys, os, collections
sys.path.insert(0, os.getcwd())  # Run from the repo root.
from benchmarks import workloads
import tensorflow.compat.v1 as tf
for impl in ('ours', 'keras'):
  with tf.Graph().as_default() as g:
    images, labels = workloads._synthetic_batch(16, 224)
    logits, _, upd = workloads.build_network(impl, 'mobilenet_v2', images, True)
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    with tf.control_dependencies(upd):
      train = tf.train.RMSPropOptimizer(0.01, momentum=0.9, epsilon=1.0).minimize(loss)
    init = [tf.global_variables_initializer(), tf.local_variables_initializer()]
  s = tf.Session(graph=g, config=workloads.session_config({'intra_op_threads': 2, 'inter_op_threads': 1}))
  s.run(init); s.run(train); s.run(train)
  md = tf.RunMetadata()
  s.run(train, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=md)
  rows = []
  for d in md.step_stats.dev_stats:
    if d.device.startswith('/host:'): continue
    for n in d.node_stats:
      try:
        op = g.get_operation_by_name(n.node_name)
      except (KeyError, ValueError):
        continue
      if op.type == 'Conv2DBackpropInput':
        rows.append((n.all_end_rel_micros / 1000., n.node_name, op.inputs[1].shape.as_list(), op.inputs[2].shape.as_list(), op.get_attr('padding'), op.get_attr('strides')))
  rows.sort(reverse=True)
  print(impl, 'total %.0f ms over %d ops' % (sum(r[0] for r in rows), len(rows)))
  for r in rows[:8]: print('  %.1f ms %s filter? %s in %s %s %s' % r)
