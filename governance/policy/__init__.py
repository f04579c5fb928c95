"""Policies as code: rules in YAML with CEL conditions, evaluated against one input document.

Modules:

* ``triggers``: where a rule applies (lifecycle transitions, deployment promotions,
  dataset use, periodic checks) and how a concrete trigger is matched;
* ``schema``: the strict schema of policy files and of their test files (pydantic);
* ``loader``: reads directories of policy files, validates them, compiles every CEL
  expression once and computes the set's content hash;
* ``engine``: evaluates a compiled set against an input document (pure, no database);
* ``document``: the selector that builds the input document from a model version;
* ``store``: the active set (from the database) and compiled sets cached by hash;
* ``replay``, ``impact``, ``testing``: what ``policy_replay``, ``policy_impact`` and
  ``policy_test`` run.

State changes (activating a set, storing a decision) are services in
``governance/services.py``. See docs/policies.md.
"""
