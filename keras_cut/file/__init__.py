"""Reading saved models without TensorFlow: the `.keras` zip, legacy `.h5` files, the weight
index, and a pure-Python reader for the HDF5 subset Keras writes (`hdf5lite`)."""
