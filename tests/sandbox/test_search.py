"""Customer search: Stripe's query language, search result pages and query errors."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


@pytest.fixture
def people(stripe_client: stripe.StripeClient) -> dict[str, str]:
    specs = [
        {"name": "Ada Lovelace", "email": "ada@example.com", "metadata": {"plan": "growth"}},
        {"name": "Grace Hopper", "email": "grace@navy.mil", "metadata": {"plan": "starter"}},
        {"name": "Alan Turing", "email": "alan@example.com", "phone": "+44 20 7946 0001"},
        {"name": "Adah Morris", "email": "ADAH@Example.com", "metadata": {"plan": "growth"}},
    ]
    return {
        spec["name"].split()[0]: stripe_client.v1.customers.create(spec).id  # type: ignore[arg-type]
        for spec in specs
    }


def _names(result: stripe.SearchResultObject[stripe.Customer]) -> list[str]:
    return [c.name or "" for c in result.data]


def test_exact_email_is_case_insensitive(
    stripe_client: stripe.StripeClient, people: dict[str, str]
) -> None:
    found = stripe_client.v1.customers.search({"query": "email:'adah@example.com'"})
    assert [c.id for c in found.data] == [people["Adah"]]
    assert found.object == "search_result"
    assert found.has_more is False
    assert found.next_page is None
    assert found.url == "/v1/customers/search"


def test_name_exact_and_substring(
    stripe_client: stripe.StripeClient, people: dict[str, str]
) -> None:
    exact = stripe_client.v1.customers.search({"query": 'name:"Grace Hopper"'})
    assert _names(exact) == ["Grace Hopper"]
    partial = stripe_client.v1.customers.search({"query": "name~'ada'"})
    # Newest first.
    assert _names(partial) == ["Adah Morris", "Ada Lovelace"]
    assert stripe_client.v1.customers.search({"query": "name:'Grace'"}).data == []


def test_metadata_and_negation(stripe_client: stripe.StripeClient, people: dict[str, str]) -> None:
    growth = stripe_client.v1.customers.search({"query": "metadata['plan']:'growth'"})
    assert _names(growth) == ["Adah Morris", "Ada Lovelace"]
    double_quoted = stripe_client.v1.customers.search({"query": 'metadata["plan"]:"starter"'})
    assert _names(double_quoted) == ["Grace Hopper"]
    no_plan = stripe_client.v1.customers.search({"query": "metadata['plan']:null"})
    assert _names(no_plan) == ["Alan Turing"]
    not_growth = stripe_client.v1.customers.search({"query": "-metadata['plan']:'growth'"})
    assert _names(not_growth) == ["Alan Turing", "Grace Hopper"]


def test_and_or(stripe_client: stripe.StripeClient, people: dict[str, str]) -> None:
    both = stripe_client.v1.customers.search(
        {"query": "metadata['plan']:'growth' AND email~'example.com'"}
    )
    assert _names(both) == ["Adah Morris", "Ada Lovelace"]
    spaced = stripe_client.v1.customers.search(
        {"query": "metadata['plan']:'growth' name~'lovelace'"}
    )
    assert _names(spaced) == ["Ada Lovelace"]
    either = stripe_client.v1.customers.search({"query": "email:'grace@navy.mil' or phone~'7946'"})
    assert _names(either) == ["Alan Turing", "Grace Hopper"]


def test_created_comparisons(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    sandbox.seed_demo()
    everyone = list(stripe_client.v1.customers.list({"limit": 100}).auto_paging_iter())
    cutoff = sorted(c.created for c in everyone)[20]
    for op, keep in (
        (">", lambda t: t > cutoff),
        (">=", lambda t: t >= cutoff),
        ("<", lambda t: t < cutoff),
        ("<=", lambda t: t <= cutoff),
        (":", lambda t: t == cutoff),
    ):
        found = stripe_client.v1.customers.search(
            {"query": f"created{op}{cutoff}", "limit": 100}
        ).data
        assert sorted(c.id for c in found) == sorted(c.id for c in everyone if keep(c.created))
        assert [c.created for c in found] == sorted((c.created for c in found), reverse=True)


def test_pages_and_auto_paging(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    sandbox.seed_demo()
    query = "email~'.com'"
    first = stripe_client.v1.customers.search({"query": query, "limit": 4})
    assert first.has_more is True
    assert isinstance(first.next_page, str)
    second = stripe_client.v1.customers.search(
        {"query": query, "limit": 4, "page": first.next_page}
    )
    assert {c.id for c in first.data}.isdisjoint(c.id for c in second.data)
    walked = [c.id for c in first.auto_paging_iter()]
    expected = [
        c.id
        for c in stripe_client.v1.customers.list({"limit": 100}).auto_paging_iter()
        if c.email and ".com" in c.email
    ]
    assert walked == expected
    assert len(walked) > 8


def test_total_count_and_expand(stripe_client: stripe.StripeClient, people: dict[str, str]) -> None:
    found = stripe_client.v1.customers.search(
        {"query": "email~'example'", "limit": 1, "expand": ["total_count"]}
    )
    assert found["total_count"] == 3
    assert len(found.data) == 1


def test_deleted_customers_are_not_found(
    stripe_client: stripe.StripeClient, people: dict[str, str]
) -> None:
    stripe_client.v1.customers.delete(people["Ada"])
    assert _names(stripe_client.v1.customers.search({"query": "name~'ada'"})) == ["Adah Morris"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("asdf", "unable to parse"),
        ("email:ada@example.com", "unable to parse"),
        ("email:'unterminated", "unable to parse"),
        ("bogus:'x'", "unsupported search field for resource `customers`"),
        ("email:'a' AND name:'b' OR phone:'c'", "AND"),
        ("name~'ab'", "at least 3"),
        ("created~'123'", "substring"),
        ("email>'a'", "numeric"),
        ("created>'soon'", "numeric"),
        ("metadata:'x'", "unable to parse"),
        (" AND ".join(f"name:'{i}'" for i in range(11)), "at most 10"),
    ],
)
def test_bad_query_is_400(stripe_client: stripe.StripeClient, query: str, message: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.search({"query": query})
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == "query"
    assert message in str(excinfo.value.user_message)


def test_missing_query_bad_page_and_limit(sandbox: SandboxServer) -> None:
    status, _, body = call(sandbox.url, "GET", "/v1/customers/search")
    assert status == 400
    assert body["error"]["code"] == "parameter_missing"
    status, _, body = call(sandbox.url, "GET", "/v1/customers/search?query=name~%27abc%27&page=%25")
    assert status == 400
    assert body["error"]["param"] == "page"
    status, _, body = call(sandbox.url, "GET", "/v1/customers/search?query=name~%27abc%27&limit=0")
    assert status == 400
    assert body["error"]["param"] == "limit"


def test_search_route_does_not_shadow_retrieve(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"name": "Plain"})
    assert stripe_client.v1.customers.retrieve(customer.id).name == "Plain"
