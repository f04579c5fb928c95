"""Risk checks of issue 7: pure functions over numpy/pandas and scikit-learn estimators.

Each module is one family of checks; every public function validates its inputs first and
raises a ``models_registry.checks.errors.CheckError`` naming the cause (never a partial
result), and returns JSON-safe dicts (plain floats, None with a reason instead of NaN) that
can be stored in a JSONField and read by the policies. The Celery job composes them.

* ``metrics``: classification and regression metrics on the test set, train/test gap.
* ``backtest``: signals on real prices with costs, slippage and a buy-and-hold benchmark.
* ``overfitting``: purged/embargoed k-fold, PBO by CSCV, probabilistic and deflated Sharpe.
* ``robustness``: metrics by volatility regime and in stress windows.
* ``data_quality``: declared rules plus missing values, outliers, duplicates, stale prices,
  timestamps; drift by PSI and KS.
* ``explainability``: permutation importance.
"""
