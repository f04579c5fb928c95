from django.urls import path

from governance.api.views import TokensView, TokenView

urlpatterns = [
    path("token/", TokenView.as_view(), name="auth-token"),
    path("tokens/", TokensView.as_view(), name="auth-tokens"),
]
