"""Entry point: `python cli.py ...` is the same as the `nlpgd` console script."""

from nlpgd.cli import main

if __name__ == "__main__":
    main()
