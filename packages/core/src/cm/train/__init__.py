"""The train / evaluate engine behind ``cm run``."""
