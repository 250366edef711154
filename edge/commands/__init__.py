"""One module per CLI command family; each exposes main(args, cfg) -> exit code."""
