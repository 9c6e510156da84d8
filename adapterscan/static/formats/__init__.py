"""Adapter formats: readers that turn each weights file into one AdapterFile description."""
