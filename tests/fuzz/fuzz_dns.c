/* libFuzzer target: the guest's synthetic resolver (net/dns.c), which
 * reads datagrams any workload can send to 127.0.0.53:53. dns_answer on
 * the input as one query; every reply must fit the classic UDP size, echo
 * the id, be a response, and an A answer must carry a synthetic address
 * that maps back to a well-formed host name. */
#include <ctype.h>

#include "net/dns.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t reply[DNS_REPLY_MAX + 64];
	char name[DNS_NAME_MAX + 64];
	size_t len;

	/* An exact-size copy: ASan sees any read past the datagram. */
	uint8_t *q = malloc(size ? size : 1);

	FUZZ_CHECK(q);
	memcpy(q, data, size);
	memset(reply, 0xa5, sizeof(reply));
	len = dns_answer(q, size, reply);
	FUZZ_CHECK(len <= DNS_REPLY_MAX);
	if (size < 12)
		FUZZ_CHECK(len == 0);
	if (len) {
		uint16_t an = (uint16_t)(reply[6] << 8 | reply[7]);

		FUZZ_CHECK(len >= 12);
		FUZZ_CHECK(reply[0] == q[0] && reply[1] == q[1]);
		FUZZ_CHECK(reply[2] & 0x80);
		FUZZ_CHECK(an <= 1);
		if (an == 1) {
			uint32_t a = (uint32_t)reply[len - 4] << 24 | (uint32_t)reply[len - 3] << 16 |
				     (uint32_t)reply[len - 2] << 8 | reply[len - 1];

			FUZZ_CHECK((reply[3] & 0x0f) == 0);
			FUZZ_CHECK(dns_is_synthetic(a));
			FUZZ_CHECK(dns_lookup_addr(a, name, sizeof(name)));
			FUZZ_CHECK(name[0] && strlen(name) <= DNS_NAME_MAX);
			for (const char *p = name; *p; p++)
				FUZZ_CHECK(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
					   *p == '-' || *p == '_' || *p == '.');
		}
	}
	free(q);
	return 0;
}
