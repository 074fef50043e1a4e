"""Deploying a slim model over clones (towers), replicas and ps tasks."""
