"""Everything that imports a framework or a runtime, one subpackage per framework
(`backend/keras`: loading, building and running Keras models). Nothing else imports them."""
