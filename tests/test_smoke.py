from tests.lab import Instance


async def test_actor_served(instance: Instance) -> None:
    response = await instance.client.get("/actor", headers={"Accept": "application/activity+json"})
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "Application"
