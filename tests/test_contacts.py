"""Contact lists, contacts, imports (10,000 rows in one call) and the CSV import command,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import sys
from pathlib import Path
from typing import Any

from rpcgw.errors import Conflict, InvalidParams, NotFound, RecipientOptedOut

from .conftest import BOB, RpcClient, basic

BOB_AUTH = basic(*BOB)


async def test_lists(rpc: RpcClient) -> None:
    clients = await rpc.call("contacts.lists.create", "Clients")
    assert clients["title"] == "Clients" and clients["contacts"] == 0
    staff = await rpc.call("contacts.lists.create", " Employees ")
    assert staff["title"] == "Employees"
    error = await rpc.error("contacts.lists.create", "Clients")
    assert (error["code"], error["message"]) == (Conflict.code, "ALREADY_EXISTS")
    await rpc.call("contacts.create", {"phone": "+33612345678", "lists": [clients["id"]]})
    lists = await rpc.call("contacts.lists.get_list")
    assert [(x["title"], x["contacts"]) for x in lists] == [("Clients", 1), ("Employees", 0)]
    renamed = await rpc.call("contacts.lists.update", staff["id"], {"title": "Staff"})
    assert renamed["title"] == "Staff"
    error = await rpc.error("contacts.lists.update", staff["id"], {"title": "Clients"})
    assert error["message"] == "ALREADY_EXISTS"
    # Another user sees none of it and can reuse the titles.
    assert await rpc.call("contacts.lists.get_list", auth=BOB_AUTH) == []
    error = await rpc.error("contacts.lists.delete", clients["id"], auth=BOB_AUTH)
    assert (error["code"], error["message"]) == (NotFound.code, "NOT_FOUND")
    await rpc.call("contacts.lists.create", "Clients", auth=BOB_AUTH)
    assert await rpc.call("contacts.lists.delete", clients["id"]) is True
    assert [x["title"] for x in await rpc.call("contacts.lists.get_list")] == ["Staff"]
    # The contact stays, in no list.
    page = await rpc.call("contacts.search", None)
    assert [(c["phone"], c["lists"]) for c in page["items"]] == [("+33612345678", [])]


async def test_contacts_create_update_search_delete(rpc: RpcClient) -> None:
    vip = (await rpc.call("contacts.lists.create", "VIP"))["id"]
    news = (await rpc.call("contacts.lists.create", "Newsletter"))["id"]
    ann = await rpc.call("contacts.create", {"phone": "+33 6 12-34-56-78", "fullname": "Ann",
                                             "lists": [vip], "fields": {"city": "Paris"}})
    assert ann["phone"] == "+33612345678" and ann["lists"] == [vip]
    assert ann["fields"] == {"city": "Paris"} and ann["opted_out"] is False
    # The same number again: the same contact, now in both lists, fields merged.
    again = await rpc.call("contacts.create", {"phone": "0033612345678", "lists": [news, vip],
                                               "fields": {"code": "A1"}})
    assert again["id"] == ann["id"] and again["lists"] == [vip, news]
    assert again["fullname"] == "Ann" and again["fields"] == {"city": "Paris", "code": "A1"}
    for i in range(5):
        await rpc.call("contacts.create", {"phone": f"+4477009001{i:02d}",
                                           "fullname": f"Bob {i}", "lists": [news]})
    error = await rpc.error("contacts.create", {"phone": "12"})
    assert error["code"] == InvalidParams.code and error["data"]["field"] == "contact.phone"
    error = await rpc.error("contacts.create", {"phone": "+33612345679", "lists": [999]})
    assert error["message"] == "NOT_FOUND" and error["data"]["field"] == "contact.lists"
    error = await rpc.error("contacts.create", {"phone": "+33612345679",
                                                "fields": {"1bad": "x"}})
    assert error["code"] == InvalidParams.code

    got = await rpc.call("contacts.get", ann["id"])
    assert got == again
    updated = await rpc.call("contacts.update", ann["id"],
                             {"fullname": "Ann B.", "fields": {"city": "Lyon"}, "lists": [news],
                              "opted_out": True})
    assert updated["fullname"] == "Ann B." and updated["fields"] == {"city": "Lyon"}
    assert updated["lists"] == [news] and updated["opted_out"] is True
    optouts = await rpc.call("contacts.optouts.get_list")
    assert [(o["phone"], o["source"]) for o in optouts] == [("+33612345678", "api")]
    error = await rpc.error("sms.send", "", "+33612345678", "Sale!", None)
    assert (error["code"], error["message"]) == (RecipientOptedOut.code, "RECIPIENT_OPTED_OUT")
    assert error["data"]["to"] == "+33612345678"

    page = await rpc.call("contacts.search", {"list_id": news, "limit": 4})
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = await rpc.call("contacts.search", {"list_id": news, "cursor": page["next_cursor"]})
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert {c["id"] for c in page["items"] + rest["items"]} >= {ann["id"]}
    assert (await rpc.call("contacts.search", {"list_id": vip}))["items"] == []
    found = await rpc.call("contacts.search", {"text": "bob 3"})
    assert [c["fullname"] for c in found["items"]] == ["Bob 3"]
    assert [c["fullname"] for c in (await rpc.call("contacts.search", {"text": "LYON"}))
            ["items"]] == ["Ann B."]
    opted = await rpc.call("contacts.search", {"opted_out": True})
    assert [c["id"] for c in opted["items"]] == [ann["id"]]
    assert (await rpc.call("contacts.search", {"opted_out": False, "count_only": True})
            ) == {"count": 5}
    error = await rpc.error("contacts.update", ann["id"], {"phone": "+447700900100"})
    assert error["message"] == "ALREADY_EXISTS"

    assert (await rpc.error("contacts.get", ann["id"], auth=BOB_AUTH))["message"] == "NOT_FOUND"
    assert await rpc.call("contacts.delete", ann["id"]) is True
    assert (await rpc.error("contacts.get", ann["id"]))["message"] == "NOT_FOUND"
    # The opt-out belongs to the number: it outlives the contact.
    assert [o["phone"] for o in await rpc.call("contacts.optouts.get_list")] == ["+33612345678"]


async def test_import_10000_rows_in_one_call(rpc: RpcClient) -> None:
    list_id = (await rpc.call("contacts.lists.create", "Everyone"))["id"]
    existing = await rpc.call("contacts.create", {"phone": "+33600000007", "fullname": "Old"})
    rows: list[dict[str, Any]] = [
        {"phone": f"+336{i:08d}", "fullname": f"Contact {i}", "fields": {"n": str(i)}}
        for i in range(9_996)]
    rows.append({"phone": "not a number"})                   # 9996: rejected
    rows.append({"phone": "+33600000001"})                   # 9997: repeats row 1
    rows.append({"phone": "+1 555"})                         # 9998: too short
    rows.append({"phone": "+33699999999", "fullname": "X"})  # 9999: added
    result = await rpc.call("contacts.import", list_id, rows)
    assert (result["added"], result["updated"], result["unchanged"], result["rejected"]) == \
        (9_996, 1, 0, 3)
    assert len(result["rows"]) == 10_000
    assert [r["index"] for r in result["rows"]] == list(range(10_000))
    assert result["rows"][7] == {"index": 7, "phone": "+33600000007", "status": "updated",
                                 "id": existing["id"]}
    assert result["rows"][9996]["status"] == "rejected"
    assert "not a phone number" in result["rows"][9996]["reason"]
    assert result["rows"][9997] == {"index": 9997, "phone": "+33600000001",
                                    "status": "rejected", "reason": "the same number as row 1"}
    assert result["rows"][9998]["status"] == "rejected"
    lists = await rpc.call("contacts.lists.get_list")
    assert lists[0]["contacts"] == 9_997
    seventh = await rpc.call("contacts.get", existing["id"])
    assert seventh["fullname"] == "Contact 7" and seventh["fields"] == {"n": "7"}

    # Importing again changes nothing; a changed name is an update.
    again = await rpc.call("contacts.import", list_id,
                           [{"phone": "+33600000002", "fullname": "Contact 2"},
                            {"phone": "+33600000003", "fullname": "Renamed"}])
    assert [r["status"] for r in again["rows"]] == ["unchanged", "updated"]
    error = await rpc.error("contacts.import", list_id, rows + [{"phone": "+33600000000"}])
    assert error["code"] == InvalidParams.code and error["data"]["param"] == "rows"
    error = await rpc.error("contacts.import", list_id, [{"phone": "+33600000000", "x": 1}])
    assert error["code"] == InvalidParams.code
    assert (await rpc.error("contacts.import", 999, rows[:1]))["message"] == "NOT_FOUND"


async def test_cli_imports_a_csv_file(gateway_factory: Any, database_url: str,
                                      tmp_path: Path) -> None:
    _, rpc = await gateway_factory(database_url)
    path = tmp_path / "contacts.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Phone", "Name", "city"])
        writer.writerow(["+33612345601", "Ann", "Paris"])
        writer.writerow(["+33 6 12 34 56 02", "Bob", ""])
        writer.writerow(["garbage", "Eve", "Nice"])
    argv = ["contacts", "import", str(path), "--list", "Clients", "--user", "alice",
            "--database", database_url]
    code, out = await run_cli(*argv)
    assert code == 0 and "created list 'Clients'" in out
    assert "2 added, 0 updated, 0 unchanged, 1 rejected" in out
    assert "line 4: 'garbage'" in out
    page = await rpc.call("contacts.search", None)
    assert [(c["phone"], c["fullname"], c["fields"]) for c in page["items"]] == [
        ("+33612345601", "Ann", {"city": "Paris"}), ("+33612345602", "Bob", {})]
    code, out = await run_cli(*argv)
    assert code == 0 and "0 added, 0 updated, 2 unchanged, 1 rejected" in out
    code, _ = await run_cli(*argv[:-4], "--user", "nobody", "--database", database_url)
    assert code == 1


async def run_cli(*argv: str) -> tuple[int, str]:
    """``rpcgw …`` in its own process, as an operator runs it next to the gateway."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", *argv, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()
