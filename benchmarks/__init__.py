"""Benchmarks of the slim MobileNets next to tf.keras.applications."""
