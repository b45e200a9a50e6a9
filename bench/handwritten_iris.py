"""The anchor for bench_repro: the iris lifecycle's work as one hand-written script.

What specs/iris.yaml asks for, with scikit-learn directly: drop duplicate rows,
a stratified train/validation/test split, the same preprocessing, logistic
regression and a grid-searched random forest, validation scores, selection by
f1_macro, test metrics, and the chosen model written with joblib.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def main(out: Path) -> None:
    frame = load_iris(as_frame=True).frame.drop_duplicates()
    frame = frame[(frame["petal length (cm)"] >= 0) & (frame["petal length (cm)"] <= 30)]
    y, X = frame["target"], frame.drop(columns="target")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=42
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.1 / 0.8, stratify=y_rest, random_state=42
    )
    numeric = list(X.columns)

    def pipeline(estimator: object) -> Pipeline:
        pre = ColumnTransformer(
            [
                (
                    "num",
                    Pipeline(
                        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                    ),
                    numeric,
                )
            ]
        )
        return Pipeline([("preprocess", pre), ("estimator", estimator)])

    logreg = pipeline(LogisticRegression(C=1.0, max_iter=1000, random_state=42))
    logreg.fit(X_train, y_train)
    forest = (
        GridSearchCV(
            pipeline(RandomForestClassifier(n_estimators=200, random_state=0)),
            {"estimator__max_depth": [3, 5, None]},
            cv=StratifiedKFold(5, shuffle=True, random_state=42),
            scoring="f1_macro",
            n_jobs=1,
        )
        .fit(X_train, y_train)
        .best_estimator_
    )
    scores = {
        name: f1_score(y_val, model.predict(X_val), average="macro")
        for name, model in (("logreg", logreg), ("forest", forest))
    }
    best = max(sorted(scores), key=lambda n: scores[n])
    model = {"logreg": logreg, "forest": forest}[best]
    pred = model.predict(X_test)
    metrics = {
        "model": best,
        "accuracy": accuracy_score(y_test, pred),
        "f1_macro": f1_score(y_test, pred, average="macro"),
    }
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "handwritten-out"))
