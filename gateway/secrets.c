/* Secrets (gateway/secrets.h): checking `--secret NAME=HOSTS:VALUE`,
 * stand-ins, and the hand-over of the set from `sbx create` to `sbx
 * gateway` through a pipe, so that the values and the CA key never touch
 * a disk. */
#include "gateway/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/config.h"
#include "lib/util.h"

#define BLOB_MAGIC "sbx-secrets-1"
#define BLOB_MAX (1u << 20)

struct secret_set *secrets_gateway;

static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len > SECRET_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* HOSTS: "a.test,*.b.test". Names only, no ports: the port is 443. */
static int parse_hosts(struct secret *s, const char *hosts, size_t len, char *err, size_t n)
{
	char list[SECRET_HOSTS_MAX * (ALLOW_PATTERN_MAX + 1)], *save = NULL, *one;

	if (len == 0 || len >= sizeof(list)) {
		snprintf(err, n, "--secret %s: expected NAME=HOSTS:VALUE with 1 to %d hosts",
			 s->name, SECRET_HOSTS_MAX);
		return -EINVAL;
	}
	memcpy(list, hosts, len);
	list[len] = '\0';
	for (one = strtok_r(list, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
		struct allow_rule *r = &s->hosts[s->nhosts];
		char why[512];

		if (s->nhosts == SECRET_HOSTS_MAX) {
			snprintf(err, n, "--secret %s: at most %d hosts", s->name, SECRET_HOSTS_MAX);
			return -E2BIG;
		}
		if (allow_parse(one, r, why, sizeof(why)) < 0) {
			snprintf(err, n, "--secret %s: %s", s->name, why);
			return -EINVAL;
		}
		if (r->kind == ALLOW_IP) {
			snprintf(err, n, "--secret %s: %s: a secret's host is a name or *.DOMAIN "
				 "(secrets go to port 443)", s->name, one);
			return -EINVAL;
		}
		s->nhosts++;
	}
	if (!s->nhosts) {
		snprintf(err, n, "--secret %s: no host", s->name);
		return -EINVAL;
	}
	return 0;
}

int secrets_add(struct secret_set *set, const char *spec, char *err, size_t n)
{
	const char *eq = strchr(spec, '='), *colon;
	uint8_t rnd[20];
	struct secret *s;
	size_t vlen;
	int r;

	if (set->n == SECRETS_MAX) {
		snprintf(err, n, "too many secrets (at most %d)", SECRETS_MAX);
		return -E2BIG;
	}
	s = &set->s[set->n];
	memset(s, 0, sizeof(*s));
	if (!eq || !name_ok(spec, (size_t)(eq - spec))) {
		snprintf(err, n, "--secret %.*s: expected NAME=HOSTS:VALUE with a NAME of letters, "
			 "digits and '_'", eq ? (int)MIN(eq - spec, 200) : 0, spec);
		return -EINVAL;
	}
	memcpy(s->name, spec, (size_t)(eq - spec));
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->s[i].name, s->name)) {
			snprintf(err, n, "--secret %s: given twice", s->name);
			return -EINVAL;
		}
	colon = strchr(eq + 1, ':');
	if (!colon) {
		snprintf(err, n, "--secret %s: expected NAME=HOSTS:VALUE", s->name);
		return -EINVAL;
	}
	if ((r = parse_hosts(s, eq + 1, (size_t)(colon - eq - 1), err, n)) < 0)
		return r;
	vlen = strlen(colon + 1);
	if (vlen == 0 || vlen > SECRET_VALUE_MAX) {
		snprintf(err, n, "--secret %s: the value is 1 to %d bytes, not %zu", s->name,
			 SECRET_VALUE_MAX, vlen);
		return -EINVAL;
	}
	/* The value goes into HTTP headers: a line break would let it add
	 * headers or requests of its own. */
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)colon[1 + i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(err, n, "--secret %s: the value has a control character (byte %zu); "
				 "it must fit in an HTTP header", s->name, i + 1);
			return -EINVAL;
		}
	}
	memcpy(s->value, colon + 1, vlen);
	s->len = vlen;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, n, "cannot make a stand-in: %s", strerror(errno));
		return -EIO;
	}
	memcpy(s->standin, "sbxsecret_", 10);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(s->standin + 10 + 2 * i, 3, "%02x", rnd[i]);
	set->n++;
	return 0;
}

bool secret_for_host(const struct secret *s, const char *host)
{
	struct allow_dest d = { .port = SECRETS_PORT };

	if (str_copy(d.name, sizeof(d.name), host) < 0)
		return false;
	return allow_match(s->hosts, s->nhosts, &d) != NULL;
}

bool secrets_for_host(const struct secret_set *set, const char *host)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (secret_for_host(&set->s[i], host))
			return true;
	return false;
}

void secrets_wipe(struct secret_set *set)
{
	OPENSSL_cleanse(set, sizeof(*set));
}

/* ---- the hand-over: length-prefixed fields ---- */

static int put(char *b, size_t cap, size_t *at, const void *p, size_t len)
{
	uint32_t l = (uint32_t)len;

	if (*at + 4 + len > cap)
		return -E2BIG;
	memcpy(b + *at, &l, 4);
	memcpy(b + *at + 4, p, len);
	*at += 4 + len;
	return 0;
}

static int get(const char *b, size_t len, size_t *at, char *out, size_t cap)
{
	uint32_t l;

	if (*at + 4 > len)
		return -EPROTO;
	memcpy(&l, b + *at, 4);
	if (l >= cap || *at + 4 + l > len)
		return -EPROTO;
	memcpy(out, b + *at + 4, l);
	out[l] = '\0';
	*at += 4 + l;
	return 0;
}

int secrets_pipe(const struct secret_set *set, char *err, size_t n)
{
	char *b = malloc(BLOB_MAX), num[16];
	size_t at = 0;
	int p[2], r = 0;

	if (!b) {
		snprintf(err, n, "out of memory");
		return -ENOMEM;
	}
	snprintf(num, sizeof(num), "%zu", set->n);
	r |= put(b, BLOB_MAX, &at, BLOB_MAGIC, strlen(BLOB_MAGIC));
	r |= put(b, BLOB_MAX, &at, set->ca_cert, strlen(set->ca_cert));
	r |= put(b, BLOB_MAX, &at, set->ca_key, strlen(set->ca_key));
	r |= put(b, BLOB_MAX, &at, num, strlen(num));
	for (size_t i = 0; i < set->n; i++) {
		const struct secret *s = &set->s[i];
		char hosts[SECRET_HOSTS_MAX * (ALLOW_PATTERN_MAX + 9)];
		size_t h = 0;

		for (size_t k = 0; k < s->nhosts; k++)
			h += (size_t)snprintf(hosts + h, sizeof(hosts) - h, "%s%s", k ? "," : "",
					      s->hosts[k].text);
		r |= put(b, BLOB_MAX, &at, s->name, strlen(s->name));
		r |= put(b, BLOB_MAX, &at, hosts, h);
		r |= put(b, BLOB_MAX, &at, s->standin, strlen(s->standin));
		r |= put(b, BLOB_MAX, &at, s->value, s->len);
	}
	if (r) {
		OPENSSL_cleanse(b, BLOB_MAX);
		free(b);
		snprintf(err, n, "the secrets add up to more than %u bytes", BLOB_MAX);
		return -E2BIG;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	/* All of it now, before the gateway even starts. */
	if ((size_t)fcntl(p[1], F_GETPIPE_SZ) < at && fcntl(p[1], F_SETPIPE_SZ, (int)at) < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		goto out;
	}
	if (fd_write_all(p[1], b, at) < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		goto out;
	}
	close(p[1]);
	r = p[0];
out:
	if (r < 0)
		snprintf(err, n, "cannot hand the secrets to the gateway: %s", strerror(-r));
	OPENSSL_cleanse(b, BLOB_MAX);
	free(b);
	return r;
}

int secrets_read(int fd, struct secret_set *set, char *err, size_t n)
{
	char *b = malloc(BLOB_MAX), num[16];
	size_t len = 0, at = 0;
	uint64_t count;
	ssize_t got;
	int r = -EPROTO;

	if (!b) {
		snprintf(err, n, "out of memory");
		return -ENOMEM;
	}
	memset(set, 0, sizeof(*set));
	while (len < BLOB_MAX && (got = read(fd, b + len, BLOB_MAX - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			snprintf(err, n, "cannot read the secrets: %s", strerror(errno));
			goto out;
		}
		len += (size_t)got;
	}
	if (get(b, len, &at, num, sizeof(num)) < 0 || strcmp(num, BLOB_MAGIC) ||
	    get(b, len, &at, set->ca_cert, sizeof(set->ca_cert)) < 0 ||
	    get(b, len, &at, set->ca_key, sizeof(set->ca_key)) < 0 ||
	    get(b, len, &at, num, sizeof(num)) < 0 || str_to_u64(num, SECRETS_MAX, &count) < 0)
		goto bad;
	for (size_t i = 0; i < count; i++) {
		struct secret *s = &set->s[i];
		char hosts[SECRET_HOSTS_MAX * (ALLOW_PATTERN_MAX + 9)];

		if (get(b, len, &at, s->name, sizeof(s->name)) < 0 ||
		    get(b, len, &at, hosts, sizeof(hosts)) < 0 ||
		    get(b, len, &at, s->standin, sizeof(s->standin)) < 0 ||
		    get(b, len, &at, s->value, sizeof(s->value)) < 0 ||
		    parse_hosts(s, hosts, strlen(hosts), err, n) < 0)
			goto bad;
		s->len = strlen(s->value);
		set->n++;
	}
	if (at != len)
		goto bad;
	r = 0;
	goto out;
bad:
	snprintf(err, n, "the secrets handed over are malformed");
	secrets_wipe(set);
out:
	OPENSSL_cleanse(b, BLOB_MAX);
	free(b);
	return r;
}

/* ---- at create ---- */

int secrets_allow(const struct secret_set *set, const char *const *allow,
		  struct secrets_allow *out, char *err, size_t n)
{
	size_t at = 0, nt = 0;

	for (; allow && allow[at]; at++) {
		if (at == ALLOW_RULES_MAX)
			break;
		out->list[at] = allow[at];
	}
	for (size_t i = 0; i < set->n; i++)
		for (size_t k = 0; k < set->s[i].nhosts; k++) {
			const char *h = set->s[i].hosts[k].text;
			char *mine = out->text[nt];
			bool have = false;

			snprintf(mine, sizeof(out->text[0]), "%s:%d", h, SECRETS_PORT);
			for (size_t j = 0; j < at && !have; j++) {
				struct allow_rule r;
				char why[512];

				have = allow_parse(out->list[j], &r, why, sizeof(why)) == 0 &&
				       (!strcmp(r.text, h) || !strcmp(r.text, mine));
			}
			if (have)
				continue;
			if (at == ALLOW_RULES_MAX) {
				snprintf(err, n, "with the secrets' hosts, more than %d --allow-net "
					 "patterns", ALLOW_RULES_MAX);
				return -E2BIG;
			}
			out->list[at++] = mine;
			nt++;
		}
	out->list[at] = NULL;
	return 0;
}

void secrets_config(const struct secret_set *set, FILE *f)
{
	char key[SECRET_NAME_MAX + 8];

	for (size_t i = 0; i < set->n; i++) {
		snprintf(key, sizeof(key), "env.%s", set->s[i].name);
		kv_write(f, key, set->s[i].standin);
	}
	kv_write(f, "egress_ca", set->ca_cert);
	kv_write(f, "env.SSL_CERT_FILE", SECRETS_GUEST_BUNDLE);
	kv_write(f, "env.REQUESTS_CA_BUNDLE", SECRETS_GUEST_BUNDLE);
	kv_write(f, "env.NODE_EXTRA_CA_CERTS", SECRETS_GUEST_CA);
	kv_write(f, "env.DENO_CERT", SECRETS_GUEST_CA);
}
