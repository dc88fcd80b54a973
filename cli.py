"""`python cli.py ...` runs the same command line as the installed `repro` script."""
from repro.cli_app import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
