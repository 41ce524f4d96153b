"""The networks: the Keras factory, heads, engines and the NumPy reference."""
