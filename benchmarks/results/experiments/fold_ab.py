"""Batch norm folding A/B (see fold_ab.txt): unfolded vs folded frozen graph, one process."""
import sys, os, collections, tempfile, time
sys.path.insert(0, os.getcwd())  # Run from the repo root.
from core import tf_compat
import numpy as np
import tensorflow.compat.v1 as tf
from export import inference_graph, freeze, graph_rewrites
d = tempfile.mkdtemp()
size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
for model in sys.argv[1].split(','):
  with tf.Graph().as_default() as g:
    net = inference_graph.build_inference_graph(model, 1001, image_size=size)
    with tf.Session() as s:
      s.run(tf.global_variables_initializer())
      rng = np.random.RandomState(0)
      for v in tf.global_variables():
        if 'BatchNorm' in v.op.name:
          shape = v.get_shape().as_list()
          val = rng.uniform(0.5, 1.5, shape) if ('variance' in v.op.name or 'gamma' in v.op.name) else rng.uniform(-0.5, 0.5, shape)
          v.load(val.astype(np.float32), s)
      tf.train.Saver().save(s, os.path.join(d, model))
  fz = freeze.freeze(model, os.path.join(d, model), 1001, image_size=size, fold_batch_norms=False)
  folded, n = graph_rewrites.fold_batch_norms(fz.graph_def, [fz.output_node_name])
  print(model, 'folded', n, collections.Counter(x.op for x in folded.node).most_common(8))
  x = np.random.RandomState(1).uniform(-1, 1, [1, size, size, 3]).astype(np.float32)
  xb = np.random.RandomState(1).uniform(-1, 1, [32, size, size, 3]).astype(np.float32)
  outs, sess = {}, {}
  for name, gd in ([('folded', folded), ('plain', fz.graph_def)] if os.environ.get('SWAP') else [('plain', fz.graph_def), ('folded', folded)]):
    g = tf.Graph()
    with g.as_default():
      tf.import_graph_def(gd, name='')
    cfg = tf.ConfigProto(intra_op_parallelism_threads=2, inter_op_parallelism_threads=1)
    sess[name] = (tf.Session(graph=g, config=cfg), g.get_tensor_by_name(fz.input_node_name + ':0'), g.get_tensor_by_name(fz.output_node_name + ':0'))
    s, i, o = sess[name]
    outs[name] = s.run(o, {i: x})
  print('max abs diff', np.abs(outs['plain'] - outs['folded']).max(), 'argmax same', outs['plain'].argmax() == outs['folded'].argmax())
  for batch, label in [(x, 'b1'), (xb, 'b32')]:
    t = collections.defaultdict(list)
    for s_, i, o in sess.values(): s_.run(o, {i: batch})
    for rep in range(30 if label == 'b1' else 5):
      for name, (s_, i, o) in sess.items():
        a = time.perf_counter(); s_.run(o, {i: batch}); t[name].append(time.perf_counter() - a)
    print(label, {k: '%.2f ms' % (1000 * np.median(v)) for k, v in t.items()})
