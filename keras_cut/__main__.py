import sys

from keras_cut.cli.app import main

sys.exit(main())
