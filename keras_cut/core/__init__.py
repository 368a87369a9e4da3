"""The ground floor: error types, JSON values read from files, text made safe to show, atomic
writes, which package a serialized class comes from. Imports nothing else of keras-cut."""
