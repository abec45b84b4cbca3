/* libFuzzer target: the egress gateway's request line (gateway/gateway.c
 * gateway_parse_connect, over gateway/allow.c), which any workload with
 * --allow-net writes to the host: "CONNECT <host> <port>". The input, cut
 * at its first newline as the gateway does, is parsed; a destination that
 * parses must be well formed (a port 1-65535; a lower-case name of at most
 * 253 bytes with no trailing dot, or an address that prints back and
 * parses again to the same), and is matched against a fixed allow list;
 * a refusal says why. */
#include <ctype.h>
#include <errno.h>

#include "gateway/gateway.h"
#include "tests/fuzz/fuzz.h"

static const char *const patterns[] = {
	"example.com", "*.example.org:443", "10.0.0.1", "[2001:db8::1]:8080", "api.test:80",
};
static struct allow_rule rules[sizeof(patterns) / sizeof(patterns[0])];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	fuzz_quiet();
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		FUZZ_CHECK(allow_parse(patterns[i], &rules[i], err, sizeof(err)) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], *line, *host, *port, *nl;
	struct allow_dest d, again;
	int r;

	/* What on_guest hands over: at most GATEWAY_REQUEST_MAX bytes, no
	 * NUL, cut at the newline, a CR before it dropped. */
	if (size > GATEWAY_REQUEST_MAX || memchr(data, '\0', size))
		return 0;
	line = malloc(size + 1); /* exact: ASan sees a read past it */
	FUZZ_CHECK(line);
	memcpy(line, data, size);
	line[size] = '\0';
	if ((nl = strchr(line, '\n'))) {
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
	}
	err[0] = '\0';
	memset(&d, 0xa5, sizeof(d));
	r = gateway_parse_connect(line, &d, &host, &port, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EINVAL);
	if (r < 0) {
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		if (r == -EINVAL)
			FUZZ_CHECK(host && port);
		free(line);
		return 0;
	}
	FUZZ_CHECK(d.port >= 1);
	if (d.is_addr) {
		char a[64];

		allow_addr_format(&d.addr, a, sizeof(a));
		FUZZ_CHECK(allow_parse_dest(a, d.port, &again, err, sizeof(err)) == 0);
		FUZZ_CHECK(again.is_addr && allow_addr_eq(&again.addr, &d.addr));
	} else {
		size_t len = strlen(d.name);

		FUZZ_CHECK(len >= 1 && len <= 253 && d.name[len - 1] != '.');
		for (const char *p = d.name; *p; p++)
			FUZZ_CHECK(!isupper((unsigned char)*p));
	}
	(void)allow_match(rules, sizeof(rules) / sizeof(rules[0]), &d);
	free(line);
	return 0;
}
