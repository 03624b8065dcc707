"""The bootstrap Job's entry point against the running mesh: idempotent, never escalates."""

from __future__ import annotations

import uuid

import pytest
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from pydantic import SecretStr

from services.bootstrap.bootstrap import BootstrapError, BootstrapSettings, bootstrap
from services.devmesh.mesh import Mesh
from tests.support.edge import DEMO_PASSWORD


def settings(mesh: Mesh, email: str, username: str, password: str) -> BootstrapSettings:
    return BootstrapSettings(
        user_target=mesh.services["user"].target,
        product_target=mesh.services["product"].target,
        users_database_url=SecretStr(f"{mesh.postgres_url}/marketplace_users?sslmode=disable"),
        admin_email=email,
        admin_username=username,
        admin_password=SecretStr(password),
        ready_timeout_seconds=30,
        tls_ca_file=mesh.mesh_tls().ca_path,
        tls_cert_file=mesh.mesh_tls().operator.cert_path,
        tls_key_file=mesh.mesh_tls().operator.key_path,
    )


def new_categories() -> list[product_pb2.Category]:
    parent = f"boot-{uuid.uuid4().hex[:8]}"
    return [
        product_pb2.Category(category_id=parent, display_name="Bootstrap parent"),
        product_pb2.Category(
            category_id=f"{parent}-child", parent_id=parent, display_name="Bootstrap child"
        ),
    ]


def category_ids(mesh: Mesh) -> set[str]:
    with mesh.operator_channel("product") as channel:
        answer = product_service_pb2_grpc.ProductServiceStub(channel).ListCategories(
            product_service_pb2.ListCategoriesRequest(), timeout=10
        )
    return {category.category_id for category in answer.categories}


def roles_after_login(mesh: Mesh, email: str, password: str) -> list[int]:
    with mesh.operator_channel("user") as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        login = users.Login(user_service_pb2.LoginRequest(email=email, password=password))
        me = users.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
            timeout=10,
        )
    return list(me.roles)


async def test_the_admin_creates_the_missing_categories_once(mesh: Mesh) -> None:
    tree = new_categories()
    admin = settings(mesh, "admin@example.com", "admin", DEMO_PASSWORD)

    await bootstrap(admin, tree)
    assert {c.category_id for c in tree} <= category_ids(mesh)
    await bootstrap(admin, tree)  # a re-run finds them and changes nothing


async def test_a_later_bootstrap_account_is_registered_but_never_made_admin(mesh: Mesh) -> None:
    suffix = uuid.uuid4().hex[:10]
    email, password = f"second-admin-{suffix}@example.org", "a-long-bootstrap-password"
    late = settings(mesh, email, f"boot_{suffix}", password)

    # The platform has an admin already, so the new account stays a customer, and creating
    # categories it lacks the role for fails with a message that says what to do.
    with pytest.raises(BootstrapError, match="not an admin"):
        await bootstrap(late, new_categories())
    assert roles_after_login(mesh, email, password) == [user_pb2.ROLE_CUSTOMER]

    await bootstrap(late, [])  # nothing missing: succeeds, still no escalation
    assert roles_after_login(mesh, email, password) == [user_pb2.ROLE_CUSTOMER]
