"""The ``cm`` command line: thin click commands over the library."""
