"""Message statuses and their equivalents in the other APIs rpcgw unifies.

CALLR status (``status``), SmsGateway24's numeric code (``status_code``) and SMS
Manager's ``result_info`` text, in one table so that every view of a message agrees.
``docs/statuses.md`` explains each mapping.
"""

from __future__ import annotations

CREATED = "CREATED"        # transient: the message exists, not yet queued
PENDING = "PENDING"        # queued, waiting for send_at, a SIM or its rate limit
SENDING = "SENDING"        # claimed by a modem worker, being handed to the modem
SENT = "SENT"              # the modem accepted it (message reference known)
DELIVERED = "DELIVERED"    # the status report says delivered
FAILED = "FAILED"          # the network reports it was not delivered
ERROR = "ERROR"            # it could not be sent at all
EXPIRED = "EXPIRED"        # validity passed before it was sent, or no report came in time
CANCELLED = "CANCELLED"    # cancelled by the user (or its campaign) before a modem took it
RECEIVED = "RECEIVED"      # incoming message

OUT_STATUSES = (CREATED, PENDING, SENDING, SENT, DELIVERED, FAILED, ERROR, EXPIRED,
                CANCELLED)
ALL_STATUSES = OUT_STATUSES + (RECEIVED,)
FINAL_STATUSES = frozenset({DELIVERED, FAILED, ERROR, EXPIRED, CANCELLED, RECEIVED})

#: SmsGateway24 numeric codes.  PENDING is 1 while it waits (send_at in the future) and
#: 3 ("queued for sending") once due; SENDING is 2 ("taken by phone": a modem has it).
#: ERROR carries its own code from the modem error (9 generic, 10 no service, 11 null
#: PDU, 12 radio off, 100 not allowed); EXPIRED before sending is 9, after sending 8.
SG24_CODES = {
    CREATED: 1, PENDING: 3, SENDING: 2, SENT: 6, DELIVERED: 7, FAILED: 8, ERROR: 9,
    EXPIRED: 8, CANCELLED: 101, RECEIVED: 5,
}
SG24_TITLES = {
    1: "pending", 2: "sending", 3: "queued", 5: "incoming", 6: "sent", 7: "delivered",
    8: "not delivered", 9: "generic failure", 10: "no service", 11: "null pdu",
    12: "radio off", 100: "not allowed", 101: "not allowed (cancelled)",
}

#: SMS Manager ``result``/``result_info`` when no modem-specific text is known.
RESULT_INFO = {
    CREATED: "[1] Accepted", PENDING: "[1] Queued", SENDING: "[2] Sending",
    SENT: "[6] Sent", DELIVERED: "[0] Delivered", FAILED: "[8] Not delivered",
    ERROR: "[9] Not sent", EXPIRED: "[8] Expired", CANCELLED: "[101] Cancelled",
    RECEIVED: "[5] Received",
}


def sg24_code(status: str, *, waiting: bool = False, error_code: int | None = None,
              was_sent: bool = False) -> int:
    if status == PENDING and waiting:
        return 1
    if status == ERROR and error_code:
        return error_code
    if status == EXPIRED and not was_sent:
        return 9
    return SG24_CODES[status]


def status_from_sg24(code: int) -> list[str]:
    """The statuses a SmsGateway24 code filter selects (``sms.search``)."""
    table = {1: [CREATED, PENDING], 2: [SENDING], 3: [PENDING], 5: [RECEIVED], 6: [SENT],
             7: [DELIVERED], 8: [FAILED, EXPIRED], 9: [ERROR, EXPIRED], 10: [ERROR],
             11: [ERROR], 12: [ERROR], 100: [ERROR], 101: [CANCELLED]}
    return table.get(code, [])
