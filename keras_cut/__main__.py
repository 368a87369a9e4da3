from keras_cut.cli.app import run

run()
