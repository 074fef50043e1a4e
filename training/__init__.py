"""Training and evaluation library: everything below the entry scripts.

optimizers   optimizer and learning-rate schedule builders, by name
hooks        session hooks: NaN/Inf guard, progress logging
checkpoints  checkpoint lookup, fit checks, the moving-average mapping
model_inputs dataset, network, preprocessing and input pipeline lookups
trainer      the training graph and run loop
evaluator    the evaluation graph and metrics
"""
