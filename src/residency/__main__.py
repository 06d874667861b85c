"""`python -m residency`: the same command line as the `residency` script."""

from residency.cli.main import main

if __name__ == "__main__":
    main()
