"""Input and output shapes of the authentication endpoints."""

from __future__ import annotations

from rest_framework import serializers


class TokenObtainSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    # Passwords are taken exactly as typed: leading or trailing spaces are part of them.
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Shown once: only its digest is stored. Send as `Authorization: Token <token>`."
    )
    expires = serializers.DateTimeField(help_text="When the token stops working (UTC). Tokens are never refreshed.")


class TokensRevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many tokens were revoked.")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()


class LockedOutSerializer(ErrorSerializer):
    retry_after = serializers.IntegerField(
        required=False,
        help_text="Seconds until the lock-out ends at the latest; absent if an administrator must clear it.",
    )
