"""Image preprocessing for the slim networks (see preprocessing_factory)."""
