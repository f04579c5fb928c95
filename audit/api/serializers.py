"""Shapes of the audit API. Output serializers describe what selectors return; input ones check query parameters."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit import links
from audit.models import Event
from audit.selectors import MAX_ID

_HEX = r"^[0-9a-f]{64}$"


class EventSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name="auditevent-detail", lookup_field="seq", help_text="This event in the API."
    )
    actor = serializers.IntegerField(
        source="actor_id", read_only=True, allow_null=True, help_text="User id; null for system actors."
    )
    object_url = serializers.SerializerMethodField(
        help_text="The object's API resource, for object types that have one (models, versions, datasets)."
    )
    before = serializers.JSONField(read_only=True, allow_null=True)
    after = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = Event
        fields = [
            "url",
            "seq",
            "timestamp",
            "actor",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "object_url",
            "before",
            "after",
            "reason",
            "request_id",
            "client_address",
            "policy_set_hash",
            "leaf_hash",
            "prev_hash",
            "entry_hash",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_object_url(self, obj: Event) -> str | None:
        path = links.api_path(obj.object_type, obj.object_id)
        if path is None:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class CheckpointSerializer(serializers.Serializer):
    """A signed tree head as signed (the same JSON as a line of the checkpoint file), plus the key to check it."""

    tree_size = serializers.IntegerField()
    root_hash = serializers.RegexField(_HEX)
    timestamp = serializers.CharField(help_text="UTC, microseconds, Z suffix: exactly the signed form.")
    key_id = serializers.RegexField(_HEX, help_text="SHA-256 of the raw Ed25519 public key.")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature.")
    origin = serializers.CharField(help_text="The origin string inside the signed message.")
    signed_message = serializers.CharField(
        help_text="The signed bytes (RFC 8785 JSON of origin, tree_size, root_hash, timestamp), as text."
    )
    public_key_pem = serializers.CharField(
        allow_null=True,
        help_text="The Ed25519 public key (PEM) that checks the signature; null if this server does not hold "
        "the key with this key_id (not configured, or rotated since).",
    )


class InclusionQuerySerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    tree_size = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, default=None)


class ConsistencyQuerySerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    second = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def validate(self, attrs: dict[str, int]) -> dict[str, int]:
        if attrs["first"] > attrs["second"]:
            raise serializers.ValidationError({"first": ["must not be greater than second"]})
        return attrs


class InclusionProofSerializer(serializers.Serializer):
    """As printed by ``manage.py audit_proof inclusion``."""

    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField(help_text="seq - 1")
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.RegexField(_HEX)
    root_hash = serializers.RegexField(_HEX)
    proof = serializers.ListField(child=serializers.RegexField(_HEX), help_text="RFC 9162 audit path.")


class ConsistencyProofSerializer(serializers.Serializer):
    """As printed by ``manage.py audit_proof consistency``."""

    first = serializers.IntegerField()
    second = serializers.IntegerField()
    first_root = serializers.RegexField(_HEX)
    second_root = serializers.RegexField(_HEX)
    proof = serializers.ListField(child=serializers.RegexField(_HEX), help_text="RFC 9162 consistency proof.")
