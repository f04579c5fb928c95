"""Safe inspection and loading of model artifacts.

Artifacts are never unpickled. Only skops archives are accepted, and only when every
type they contain is trusted: skops' own defaults (scikit-learn estimators, NumPy,
builtins) plus ``settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES``. See
docs/decisions/0003-skops-artifacts.md.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import skops.io as sio
from django.conf import settings

from governance.errors import InvalidArtifact, PayloadTooLarge, UnsafeArtifact
from models_registry.choices import ModelType

# Final-estimator class name -> model family in the complexity table.
ESTIMATOR_FAMILIES: dict[str, ModelType] = {
    **dict.fromkeys(
        ("LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "SGDRegressor"),
        ModelType.LINEAR_REGRESSION,
    ),
    **dict.fromkeys(("LogisticRegression", "LogisticRegressionCV", "SGDClassifier"), ModelType.LOGISTIC_REGRESSION),
    **dict.fromkeys(("DecisionTreeClassifier", "DecisionTreeRegressor"), ModelType.DECISION_TREE),
    **dict.fromkeys(
        ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"),
        ModelType.RANDOM_FOREST,
    ),
    **dict.fromkeys(("SVC", "SVR", "NuSVC", "NuSVR", "LinearSVC", "LinearSVR"), ModelType.SVM),
    **dict.fromkeys(("MLPClassifier", "MLPRegressor"), ModelType.DEEP_LEARNING),
}

_ZIP_BOMB_RATIO = 20
_COMPRESSED_PREFIXES = (b"ZF", b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"\x04\x22\x4d\x18")


@dataclass(frozen=True)
class ArtifactInfo:
    sha256: str
    size: int
    estimator_class: str
    family: ModelType | None
    n_features: int | None
    feature_names: list[str] = field(default_factory=list)


def _refuse_non_skops(data: bytes) -> None:
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise UnsafeArtifact(
            f"the artifact is a pickle stream (protocol {data[1]}); pickles run arbitrary code when loaded "
            "and are refused. Save the model with skops.io.dump() instead."
        )
    # A zlib header is 0x78 plus a check byte (0x01/0x5e/0x9c/0xda by level); joblib's default
    # compress=3 writes 0x78 0x5e. The other prefixes are joblib's gzip/bz2/xz/lzma/lz4/ZF files.
    zlib_header = len(data) >= 2 and data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0
    if zlib_header or data.startswith(_COMPRESSED_PREFIXES):
        raise UnsafeArtifact(
            "the artifact looks like a compressed joblib/pickle file; pickles run arbitrary code when loaded "
            "and are refused. Save the model with skops.io.dump() instead."
        )
    raise InvalidArtifact("the artifact is not a skops archive (a zip file containing schema.json)")


def family_of(cls: type) -> ModelType | None:
    """The complexity-table family of an estimator class, looking through subclasses too,
    so a trusted custom subclass cannot hide a forest behind a new name."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("sklearn.") and klass.__name__ in ESTIMATOR_FAMILIES:
            return ESTIMATOR_FAMILIES[klass.__name__]
    return None


def _final_estimator(obj: Any) -> Any:
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list) and steps:
        return steps[-1][1]
    return obj


def trusted_types(data: bytes) -> list[str]:
    """The artifact's non-default types, if all are trusted; otherwise ``UnsafeArtifact`` naming the others."""
    try:
        extra_types = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InvalidArtifact(f"the skops archive cannot be read: {exc}") from exc
    allowed = set(settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES)
    refused = sorted(t for t in extra_types if t not in allowed)
    if refused:
        raise UnsafeArtifact(
            f"the artifact contains untrusted types: {', '.join(refused)}. "
            "Only scikit-learn estimators and the types in GOVERNANCE_TRUSTED_ARTIFACT_TYPES are loaded.",
            detail={"untrusted_types": refused},
        )
    return list(extra_types)


def load_artifact(data: bytes) -> Any:
    """Load a skops artifact whose types are all trusted; never unpickles."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        _refuse_non_skops(data)
    types = trusted_types(data)
    try:
        return sio.loads(data, trusted=types)
    except Exception as exc:
        raise InvalidArtifact(f"the skops archive cannot be loaded: {exc}") from exc


def inspect_artifact(data: bytes) -> ArtifactInfo:
    """Check an uploaded artifact and describe it, or raise a domain error naming the problem."""
    max_bytes = settings.GOVERNANCE_MAX_ARTIFACT_BYTES
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the artifact is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    if not data:
        raise InvalidArtifact("the artifact is empty")
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        _refuse_non_skops(data)
    with zipfile.ZipFile(buffer) as archive:
        names = archive.namelist()
        if "schema.json" not in names:
            raise InvalidArtifact("the zip file has no schema.json, so it is not a skops archive")
        unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > max_bytes * _ZIP_BOMB_RATIO:
            raise PayloadTooLarge(f"the artifact unpacks to {unpacked:,} bytes, more than the allowed ratio")
    obj = load_artifact(data)
    estimator = _final_estimator(obj)
    if not callable(getattr(obj, "predict", None)):
        raise InvalidArtifact(f"the artifact holds a {type(obj).__name__}, which has no predict() method")
    cls = type(estimator)
    feature_names = [str(name) for name in getattr(obj, "feature_names_in_", [])]
    n_features = getattr(obj, "n_features_in_", None)
    return ArtifactInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        estimator_class=f"{type(obj).__module__}.{type(obj).__qualname__}"
        + (f"[{cls.__module__}.{cls.__qualname__}]" if estimator is not obj else ""),
        family=family_of(cls),
        n_features=int(n_features) if n_features is not None else None,
        feature_names=feature_names,
    )
