"""scikit-learn's conventions for the baselines, checked by scikit-learn's own checks.

The baselines are `BaseEstimator`s, but they are fitted on price frames, not on `(X, y)`
arrays, so scikit-learn's fitting checks cannot apply to them (`ZooRegressor`, the
estimator on arrays, runs the whole suite in tests/trainers/test_sklearn.py). What does
apply is the parameter API that `clone`, `GridSearchCV` and pipelines rely on: `__init__`
only stores its arguments, every parameter has a default, `get_params`/`set_params` round
trip, the repr and the tags are valid.
"""

import pytest
from sklearn.utils import estimator_checks as checks

from metazoo.baselines import BASELINES

API_CHECKS = [
    checks.check_no_attributes_set_in_init,
    checks.check_parameters_default_constructible,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_cloneable,
    checks.check_estimator_repr,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_valid_tag_types,
    checks.check_estimator_tags_renamed,
    checks.check_mixin_order,
]


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_follow_the_estimator_parameter_api(name, check):
    check(name, BASELINES[name]())
