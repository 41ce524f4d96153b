"""Training: the Keras fit loop, progress, devices, and training in NumPy."""
