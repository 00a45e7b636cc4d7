"""The command line: argparse only; every command calls tvmedge.api with keywords."""
