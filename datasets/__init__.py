"""TFRecord datasets, their converters and the tf.data input pipeline."""
