"""Baseline for the cost columns' overhead: `keras-cut inspect` with MACs and activation memory
stubbed out (every layer's cost 0), everything else unchanged."""

import sys

from keras_cut.cli.app import main
from keras_cut.cut import costs
from keras_cut.inspect import inspection

inspection.flat_cost = lambda flat, nodes=None, inputs=None: costs.Cost()
inspection.layer_call_costs = lambda graph, layer: ([0] * len(layer.calls),
                                                    [0] * len(layer.calls))
sys.argv = ["keras-cut", "inspect", *sys.argv[1:]]
main()
