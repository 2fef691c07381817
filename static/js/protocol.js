// The numbers the protocol gives a meaning to, in one place: storage/schema.py on the server
// (tests/test_protocol_numbers.py keeps the two the same).

export const PacketType = Object.freeze({ PERSONAL: 1, GROUP_NORMAL: 2, GROUP_LUCKY: 3, EXCLUSIVE: 4 });

// A packet's `pay_status`: AWAITING_SETTLEMENT is paid as far as the app knows (grabs go ahead)
// while the provider's notification is still to come (到账 waits for it).
export const PayStatus = Object.freeze({ UNPAID: 0, PAID: 1, AWAITING_SETTLEMENT: 2, VOIDED: 3 });
