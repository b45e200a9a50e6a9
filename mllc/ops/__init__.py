"""Operations: one module per verb (plan, apply, monitor, promote, status, diff, predict,
init). Each composes the layers below it; :mod:`mllc.api` is their one entry.
"""
