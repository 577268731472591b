"""Reference answers to the notebooks' exercises, one module per notebook, named as the notebook's blanks.

Try the exercise first: each notebook loads these only when run with ``solutions=True``.
"""
