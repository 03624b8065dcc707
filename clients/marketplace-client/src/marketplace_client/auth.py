"""A token provider: signs in, refreshes before the access token expires, and gives the header."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from marketplace_client.errors import UnauthenticatedError, from_rpc_error


class TokenProvider:
    """Bearer tokens for one account, signed in with email and password.

    The first call signs in (Login); later calls reuse the access token until
    `refresh_margin` seconds before it expires, then rotate it (RefreshToken). A refresh
    token that no longer works (the session ended) falls back to signing in again.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        email: str,
        password: str,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = user_service_pb2_grpc.UserServiceStub(channel)
        self._email = email
        self._password = password
        self._margin = refresh_margin
        self._clock = clock
        self._access = ""
        self._refresh = ""
        self._expires_at = 0.0
        # One sign-in or refresh at a time: a refresh token is single use.
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token, signing in or refreshing when needed.

        Returns:
            The access JWT.

        Raises:
            MarketplaceError: Sign-in failed (UnauthenticatedError for wrong credentials).
        """
        async with self._lock:
            if self._access and self._clock() < self._expires_at - self._margin:
                return self._access
            if self._refresh:
                try:
                    await self._rotate()
                    return self._access
                except UnauthenticatedError:
                    self._refresh = ""
            await self._sign_in()
            return self._access

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """The authorization metadata for a call.

        Returns:
            (("authorization", "Bearer <token>"),).
        """
        return (("authorization", f"Bearer {await self.token()}"),)

    async def _sign_in(self) -> None:
        request = user_service_pb2.LoginRequest(email=self._email, password=self._password)
        try:
            response = await self._stub.Login(request)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        self._keep(response.access_token, response.refresh_token, response.expires_in)

    async def _rotate(self) -> None:
        request = user_service_pb2.RefreshTokenRequest(refresh_token=self._refresh)
        try:
            response = await self._stub.RefreshToken(request)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from error
        self._keep(response.access_token, response.refresh_token, response.expires_in)

    def _keep(self, access: str, refresh: str, expires_in: int) -> None:
        self._access, self._refresh = access, refresh
        self._expires_at = self._clock() + expires_in
