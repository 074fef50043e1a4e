"""Training and evaluation library: everything below the entry scripts.

optimizers   optimizer and learning-rate schedule builders, by name
hooks        session hooks: NaN/Inf guard, progress logging
checkpoints  checkpoint lookup, fit checks, the moving-average mapping
model_inputs dataset, network, preprocessing and input pipeline lookups
trainer      the training graph and run loop
train_dir_guard  the chief's lock, clean-up and resume choice in train_dir
train_dir_lock   one trainer per training directory (lock with heartbeat)
checkpoint_recovery  readable-checkpoint search, temp-file clean-up, fsync
evaluator    the evaluation graph and metrics
"""
