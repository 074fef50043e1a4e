"""Fault-injection drivers that check the training scripts survive crashes."""
