"""One module per `tv3dg` subcommand; see `tv3dg.cli`."""
