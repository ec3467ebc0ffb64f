"""One module per ``bgbench`` subcommand, each with ``register(subparsers)``."""
