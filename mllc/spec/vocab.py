"""The closed vocabularies of the spec language: tasks, metrics, datasets, estimators.

Plain data, importable without scikit-learn: validation never imports the
estimators it names. The allow-list is the set of scikit-learn estimator
classes a spec may name; a repository extends it in ``mllc.toml``
(``[estimators] allow = ["pkg.module.Class", ...]``), never a spec itself.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["classification", "regression"]

# metric -> True when higher is better
CLASSIFICATION_METRICS: dict[str, bool] = {
    "accuracy": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
    "roc_auc": True,
    "log_loss": False,
}
REGRESSION_METRICS: dict[str, bool] = {
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
}
METRICS: dict[str, dict[str, bool]] = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
}


def higher_is_better(metric: str) -> bool:
    return CLASSIFICATION_METRICS.get(metric, REGRESSION_METRICS.get(metric, True))


# Datasets bundled with scikit-learn (no download), and the task each one suits.
SKLEARN_DATASETS: dict[str, Task] = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}

_CLASSIFIERS = """
sklearn.linear_model.LogisticRegression
sklearn.linear_model.RidgeClassifier
sklearn.linear_model.SGDClassifier
sklearn.linear_model.Perceptron
sklearn.svm.SVC
sklearn.svm.LinearSVC
sklearn.svm.NuSVC
sklearn.neighbors.KNeighborsClassifier
sklearn.naive_bayes.GaussianNB
sklearn.naive_bayes.MultinomialNB
sklearn.naive_bayes.BernoulliNB
sklearn.tree.DecisionTreeClassifier
sklearn.tree.ExtraTreeClassifier
sklearn.ensemble.RandomForestClassifier
sklearn.ensemble.ExtraTreesClassifier
sklearn.ensemble.GradientBoostingClassifier
sklearn.ensemble.HistGradientBoostingClassifier
sklearn.ensemble.AdaBoostClassifier
sklearn.ensemble.BaggingClassifier
sklearn.discriminant_analysis.LinearDiscriminantAnalysis
sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis
sklearn.neural_network.MLPClassifier
sklearn.dummy.DummyClassifier
"""
_REGRESSORS = """
sklearn.linear_model.LinearRegression
sklearn.linear_model.Ridge
sklearn.linear_model.Lasso
sklearn.linear_model.ElasticNet
sklearn.linear_model.SGDRegressor
sklearn.linear_model.HuberRegressor
sklearn.linear_model.BayesianRidge
sklearn.svm.SVR
sklearn.svm.LinearSVR
sklearn.neighbors.KNeighborsRegressor
sklearn.tree.DecisionTreeRegressor
sklearn.ensemble.RandomForestRegressor
sklearn.ensemble.ExtraTreesRegressor
sklearn.ensemble.GradientBoostingRegressor
sklearn.ensemble.HistGradientBoostingRegressor
sklearn.ensemble.AdaBoostRegressor
sklearn.neural_network.MLPRegressor
sklearn.dummy.DummyRegressor
"""

# estimator class path -> the task it serves
ESTIMATORS: dict[str, Task] = {
    **{name: "classification" for name in _CLASSIFIERS.split()},
    **{name: "regression" for name in _REGRESSORS.split()},
}
