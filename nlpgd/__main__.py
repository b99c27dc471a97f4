"""``python -m nlpgd ...`` is the ``nlpgd`` command; launchers use it:
``torchrun --nproc_per_node 2 -m nlpgd compare CONFIG``, ``accelerate launch -m nlpgd compare CONFIG``."""

from nlpgd.cli import main

if __name__ == "__main__":
    main()
