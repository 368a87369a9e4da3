"""The `export` operation: a cut written as a deployable artifact by Keras' own exporter, then
proven in the artifact's own runtime against the parent."""
