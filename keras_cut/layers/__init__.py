"""What keras-cut knows about each Keras layer class, one entry per class (`known`): output
shapes, stored arrays and their layouts, MACs, hazards; tf.keras 2 translations (`legacy`,
`tfops`) and Keras' automatic names (`naming`)."""
