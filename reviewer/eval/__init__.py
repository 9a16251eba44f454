"""`reviewer eval`: review a labelled corpus and measure the findings against its defects.

corpus.py reads the cases (the trust boundary), match.py pairs findings with defects,
metrics.py turns pairs into figures, run.py runs the cases through `review --diff`'s path,
results.py holds the JSON that run, merge and compare share, report.py draws the tables.
"""
