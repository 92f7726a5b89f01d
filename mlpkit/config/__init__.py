"""The run config: what to train (schema) and the checks a config must pass (validate).

``schema`` holds the frozen dataclasses that train, diagnostics and app read;
``validate`` turns a plain dict (from YAML or anywhere else) into them, one
sentence per mistake. Reading YAML files and ``--set`` belong to the app
(``mlpkit.app.configfile``).

May import: ``mlpkit.nn`` (initializer names), ``mlpkit.data.registry``
(dataset names), ``mlpkit.errors``. Never YAML, files or screens.
"""
