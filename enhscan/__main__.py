"""``python -m enhscan``: the same as the ``enhscan`` command."""

from enhscan.cli import main

if __name__ == "__main__":
    main()
