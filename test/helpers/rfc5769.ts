/**
 * The RFC 5769 test vectors both STUN implementations are checked against: the test client
 * (test/helpers/turn-client.ts) and the embedded server's codec (turn/stun.ts).
 */

/** RFC 5769 §2.4, "Sample Request with Long-Term Authentication", byte for byte (its padding is zero bytes). */
export const RFC5769_LONG_TERM_REQUEST = Buffer.from([
  0x00, 0x01, 0x00, 0x60, //    Request type and message length
  0x21, 0x12, 0xa4, 0x42, //    Magic cookie
  0x78, 0xad, 0x34, 0x33, // }
  0xc6, 0xad, 0x72, 0xc0, // }  Transaction ID
  0x29, 0xda, 0x41, 0x2e, // }
  0x00, 0x06, 0x00, 0x12, //    USERNAME attribute header
  0xe3, 0x83, 0x9e, 0xe3, // }
  0x83, 0x88, 0xe3, 0x83, // }
  0xaa, 0xe3, 0x83, 0x83, // }  Username value (18 bytes) and padding (2 bytes)
  0xe3, 0x82, 0xaf, 0xe3, // }
  0x82, 0xb9, 0x00, 0x00, // }
  0x00, 0x15, 0x00, 0x1c, //    NONCE attribute header
  0x66, 0x2f, 0x2f, 0x34, // }
  0x39, 0x39, 0x6b, 0x39, // }
  0x35, 0x34, 0x64, 0x36, // }
  0x4f, 0x4c, 0x33, 0x34, // }  Nonce value
  0x6f, 0x4c, 0x39, 0x46, // }
  0x53, 0x54, 0x76, 0x79, // }
  0x36, 0x34, 0x73, 0x41, // }
  0x00, 0x14, 0x00, 0x0b, //    REALM attribute header
  0x65, 0x78, 0x61, 0x6d, // }
  0x70, 0x6c, 0x65, 0x2e, // }  Realm value (11 bytes) and padding (1 byte)
  0x6f, 0x72, 0x67, 0x00, // }
  0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
  0xf6, 0x70, 0x24, 0x65, // }
  0x6d, 0xd6, 0x4a, 0x3e, // }
  0x02, 0xb8, 0xe0, 0x71, // }  HMAC-SHA1 fingerprint
  0x2e, 0x85, 0xc9, 0xa2, // }
  0x8c, 0xa8, 0x96, 0x66, // }
]);
/** The sample's parameters (RFC 5769 §2.4): the username is "matrix" in katakana, the password needs SASLprep. */
export const USERNAME = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
export const PASSWORD = 'The\u00ADM\u00AAtr\u2168';
export const NONCE = 'f//499k954d6OL34oL9FSTvy64sA';
export const REALM = 'example.org';

/** RFC 5769 §2.2 and §2.3: the XOR-MAPPED-ADDRESS values of the sample responses and their transaction ID. */
export const RFC5769_RESPONSE_TRANSACTION_ID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
export const RFC5769_XOR_MAPPED_IPV4 = { value: Buffer.from('0001a147e112a643', 'hex'), address: '192.0.2.1', port: 32853 };
export const RFC5769_XOR_MAPPED_IPV6 = { value: Buffer.from('0002a1470113a9faa5d3f179bc25f4b5bed2b9d9', 'hex'), address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 };

/**
 * RFC 5769 §2.2 "Sample IPv4 Response", byte for byte: SOFTWARE "test vector" (padded with a space),
 * XOR-MAPPED-ADDRESS 192.0.2.1:32853, MESSAGE-INTEGRITY with the short-term password below, FINGERPRINT.
 */
export const RFC5769_IPV4_RESPONSE = Buffer.from(
  '0101003c2112a442b7e7a701bc34d686fa87dfae' + // header: Binding success, length 60, cookie, transaction ID
  '8022000b7465737420766563746f7220' + // SOFTWARE
  '002000080001a147e112a643' + // XOR-MAPPED-ADDRESS
  '000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7' + // MESSAGE-INTEGRITY
  '80280004c07d4c96', // FINGERPRINT
  'hex',
);
/** The short-term password of §2.1-2.3 (the HMAC key as it is). */
export const RFC5769_SHORT_TERM_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
