"""The saved bundle: the one writer and reader of its files, and their table."""
