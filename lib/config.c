/* Configuration parser shared by PID 1 and the server: see config.h. */
#include "lib/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	str_copy(c->hostname, sizeof(c->hostname), "sandbox");
	c->port = CONFIG_PORT;
	str_copy(c->user, sizeof(c->user), "root");
	c->ready_port = CONFIG_READY_PORT;
	c->session_grace = CONFIG_SESSION_GRACE;
	c->stop_grace = CONFIG_STOP_GRACE;
	c->output_buffer = CONFIG_OUTPUT_BUFFER;
	c->seccomp = true;
	c->pids_max = CONFIG_PIDS_AUTO;
	c->egress_port = CONFIG_EGRESS_PORT;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->envc; i++)
		free(c->env[i]);
	free(c->env);
	c->env = NULL;
	c->envc = 0;
	for (size_t i = 0; i < c->nlabels; i++)
		free(c->labels[i]);
	free(c->labels);
	c->labels = NULL;
	c->nlabels = 0;
	free(c->egress_names);
	c->egress_names = NULL;
	free(c->egress_addrs);
	c->egress_addrs = NULL;
}

static size_t env_name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');

	return eq ? (size_t)(eq - entry) : strlen(entry);
}

const char *config_env_get(char *const *env, const char *name)
{
	size_t len = strlen(name);

	for (; env && *env; env++)
		if (env_name_len(*env) == len && memcmp(*env, name, len) == 0)
			return *env + len + 1;
	return NULL;
}

int config_env_set(char ***env, size_t *envc, const char *name, const char *value)
{
	size_t len = strlen(name), i;
	char *entry = NULL, **grown;

	if (value) {
		size_t vlen = strlen(value);

		entry = malloc(len + vlen + 2);
		if (!entry)
			return -ENOMEM;
		memcpy(entry, name, len);
		entry[len] = '=';
		memcpy(entry + len + 1, value, vlen + 1);
	}
	for (i = 0; i < *envc; i++)
		if (env_name_len((*env)[i]) == len && memcmp((*env)[i], name, len) == 0)
			break;
	if (i < *envc) {
		free((*env)[i]);
		if (entry) {
			(*env)[i] = entry;
		} else {
			memmove(&(*env)[i], &(*env)[i + 1], (*envc - i) * sizeof(char *));
			(*envc)--;
		}
		return 0;
	}
	if (!entry)
		return 0;
	if (*envc >= CONFIG_ENV_MAX) {
		free(entry);
		return -E2BIG;
	}
	grown = realloc(*env, (*envc + 2) * sizeof(char *));
	if (!grown) {
		free(entry);
		return -ENOMEM;
	}
	*env = grown;
	(*env)[(*envc)++] = entry;
	(*env)[*envc] = NULL;
	return 0;
}

static bool env_name_ok(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static bool hostname_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CONFIG_HOSTNAME_MAX || *s == '-' || *s == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.')
			return false;
	return true;
}

/* A virtio disk's serial, as the launcher names its disks. */
static bool serial_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CONFIG_SERIAL_MAX)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

static int fail(char *err, size_t n, int code, const char *fmt, const char *key, const char *val)
{
	snprintf(err, n, fmt, key, val);
	return -code;
}

/* rlimit.NAME: the names of setrlimit(2)'s RLIMIT_* constants, lower case. */
static const struct { const char *name; int resource; } rlimit_names[] = {
	{ "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA }, { "fsize", RLIMIT_FSIZE }, { "locks", RLIMIT_LOCKS },
	{ "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
	{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "rss", RLIMIT_RSS },
	{ "rtprio", RLIMIT_RTPRIO }, { "rttime", RLIMIT_RTTIME },
	{ "sigpending", RLIMIT_SIGPENDING }, { "stack", RLIMIT_STACK },
};
_Static_assert(ARRAY_SIZE(rlimit_names) <= CONFIG_RLIMITS_MAX, "one slot per resource");

/* "unlimited" or a number. */
static int rlim_parse(const char *s, rlim_t *out)
{
	uint64_t v;

	if (strcmp(s, "unlimited") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (str_to_u64(s, UINT64_MAX - 1, &v) < 0)
		return -EINVAL;
	*out = (rlim_t)v;
	return 0;
}

/* rlimit.NAME = SOFT:HARD */
static int rlimit_set(struct config *c, const char *key, const char *value, char *err, size_t n)
{
	char soft[32], *hard;
	struct config_rlimit *rl = NULL;
	struct rlimit lim;
	int resource = -1;

	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(key + 7, rlimit_names[i].name) == 0)
			resource = rlimit_names[i].resource;
	if (resource < 0)
		return fail(err, n, EINVAL, "%s: '%s' is not a resource limit (nofile, nproc, "
			    "core, stack, ...: setrlimit(2)'s names)", key, key + 7);
	hard = strchr(value, ':');
	if (!hard || (size_t)(hard - value) >= sizeof(soft))
		return fail(err, n, EINVAL, "%s: '%s' is not SOFT:HARD", key, value);
	snprintf(soft, sizeof(soft), "%.*s", (int)(hard - value), value);
	if (rlim_parse(soft, &lim.rlim_cur) < 0 || rlim_parse(hard + 1, &lim.rlim_max) < 0 ||
	    lim.rlim_cur > lim.rlim_max)
		return fail(err, n, EINVAL, "%s: '%s' is not SOFT:HARD (numbers or unlimited, "
			    "SOFT at most HARD)", key, value);
	for (size_t i = 0; i < c->nrlimits; i++)
		if (c->rlimits[i].resource == resource)
			rl = &c->rlimits[i]; /* set again: the later one wins */
	if (!rl)
		rl = &c->rlimits[c->nrlimits++]; /* one slot per resource: never full */
	rl->resource = resource;
	rl->lim = lim;
	return 0;
}

/* tmpfs.N = PATH:OPTIONS, N from 0 to 7: the flags mount(2) takes
 * (ro, nosuid, nodev, noexec, the atime ones) and tmpfs(5)'s size, mode,
 * nr_inodes, nr_blocks, uid and gid. Anything else names the option. */
static int tmpfs_set(struct config *c, const char *key, const char *value, char *err, size_t n)
{
	static const struct { const char *name; unsigned long set, clear; } flags[] = {
		{ "ro", MS_RDONLY, 0 }, { "rw", 0, MS_RDONLY }, { "nosuid", MS_NOSUID, 0 },
		{ "suid", 0, MS_NOSUID }, { "nodev", MS_NODEV, 0 }, { "dev", 0, MS_NODEV },
		{ "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC }, { "noatime", MS_NOATIME, 0 },
		{ "relatime", MS_RELATIME, 0 }, { "strictatime", MS_STRICTATIME, 0 },
		{ "nodiratime", MS_NODIRATIME, 0 },
	};
	static const char *const data[] = { "size=", "mode=", "nr_inodes=", "nr_blocks=", "uid=",
					    "gid=" };
	struct config_tmpfs t = { .flags = 0 };
	const char *colon = strchr(value, ':'), *o;
	uint64_t v;

	if (str_to_u64(key + 6, CONFIG_TMPFS_MAX - 1, &v) < 0)
		return fail(err, n, EINVAL, "%s: '%s' is not a tmpfs slot (0 to 7)", key, key + 6);
	if (!colon)
		colon = value + strlen(value);
	if (value[0] != '/' || (size_t)(colon - value) >= sizeof(t.path) || colon - value < 2 ||
	    (snprintf(t.path, sizeof(t.path), "%.*s", (int)(colon - value), value),
	     strstr(t.path, "/../") ||
	     (strlen(t.path) >= 3 && strcmp(t.path + strlen(t.path) - 3, "/..") == 0)))
		return fail(err, n, EINVAL, "%s: '%s' is not PATH:OPTIONS with an absolute path "
			    "under /", key, value);
	for (o = *colon ? colon + 1 : colon; *o;) {
		size_t len = strcspn(o, ","), i, at = strlen(t.data);
		bool known = false;

		for (i = 0; i < ARRAY_SIZE(flags) && !known; i++)
			if (strlen(flags[i].name) == len && strncmp(o, flags[i].name, len) == 0) {
				t.flags = (t.flags & ~flags[i].clear) | flags[i].set;
				known = true;
			}
		for (i = 0; i < ARRAY_SIZE(data) && !known; i++) {
			size_t k = strlen(data[i]);

			if (len > k && strncmp(o, data[i], k) == 0 &&
			    strspn(o + k, "0123456789kmgKMG%") >= len - k) {
				if (at + len + 2 > sizeof(t.data))
					return fail(err, n, E2BIG, "%s: too many options in '%s'",
						    key, value);
				snprintf(t.data + at, sizeof(t.data) - at, "%s%.*s", at ? "," : "",
					 (int)len, o);
				known = true;
			}
		}
		if (!known)
			return fail(err, n, EINVAL, "%s: unknown or malformed tmpfs option in '%s' "
				    "(ro, nosuid, nodev, noexec, size=, mode=, nr_inodes=, uid=, gid=, "
				    "...)", key, value);
		o += len;
		if (*o == ',')
			o++;
	}
	c->tmpfs[v] = t;
	return 0;
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t n)
{
	uint64_t v;
	int r;

	if (strcmp(key, "hostname") == 0) {
		if (!hostname_ok(value))
			return fail(err, n, EINVAL,
				    "%s: '%s' is not a host name (1-64 letters, digits, '-' and '.')",
				    key, value);
		str_copy(c->hostname, sizeof(c->hostname), value);
		return 0;
	}
	if (strcmp(key, "port") == 0) {
		if (str_to_u64(value, UINT32_MAX - 1, &v) < 0 || v == 0)
			return fail(err, n, EINVAL, "%s: '%s' is not a port number (1-4294967294)",
				    key, value);
		c->port = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "user") == 0) {
		if (!*value || strlen(value) > CONFIG_USER_MAX || strchr(value, ':') ||
		    strchr(value, '/'))
			return fail(err, n, EINVAL, "%s: '%s' is not a user name or uid", key, value);
		str_copy(c->user, sizeof(c->user), value);
		return 0;
	}
	if (strcmp(key, "workdir") == 0) {
		if (value[0] != '/' || strlen(value) >= sizeof(c->workdir))
			return fail(err, n, EINVAL, "%s: '%s' is not an absolute path", key, value);
		str_copy(c->workdir, sizeof(c->workdir), value);
		return 0;
	}
	if (strcmp(key, "lifetime") == 0) {
		if (strcmp(value, "session") == 0) {
			c->session = true;
			c->lifetime = 0;
			return 0;
		}
		if (str_to_duration(value, CONFIG_LIFETIME_MAX, &v) < 0)
			return fail(err, n, EINVAL,
				    "%s: '%s' is not \"session\" or a duration up to 24h (90s, 5m, 2h; 0: none)",
				    key, value);
		c->session = false;
		c->lifetime = v;
		return 0;
	}
	if (strcmp(key, "session_grace") == 0 || strcmp(key, "stop_grace") == 0) {
		if (str_to_duration(value, 3600, &v) < 0)
			return fail(err, n, EINVAL, "%s: '%s' is not a duration up to 1h (5s, 2m)",
				    key, value);
		*(key[1] == 'e' ? &c->session_grace : &c->stop_grace) = v;
		return 0;
	}
	if (strcmp(key, "token") == 0) {
		size_t len = strlen(value);

		if (len < 16 || len > 256)
			return fail(err, n, EINVAL, "%s: a token is 16 to 256 bytes%s", key, "");
		str_copy(c->token, sizeof(c->token), value);
		return 0;
	}
	if (strcmp(key, "template") == 0) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, n, EINVAL, "%s: '%s' is not on or off", key, value);
		c->template = strcmp(value, "on") == 0;
		return 0;
	}
	if (strcmp(key, "seccomp") == 0) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, n, EINVAL, "%s: '%s' is not on or off", key, value);
		c->seccomp = strcmp(value, "on") == 0;
		return 0;
	}
	if (strcmp(key, "egress") == 0) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, n, EINVAL, "%s: '%s' is not on or off", key, value);
		c->egress = strcmp(value, "on") == 0;
		return 0;
	}
	if (strcmp(key, "egress_port") == 0) {
		if (str_to_u64(value, UINT32_MAX - 1, &v) < 0 || v == 0)
			return fail(err, n, EINVAL, "%s: '%s' is not a port number (1-4294967294)",
				    key, value);
		c->egress_port = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "egress_names") == 0 || strcmp(key, "egress_addrs") == 0) {
		char **at = key[7] == 'n' ? &c->egress_names : &c->egress_addrs;
		char *copy = strdup(value);

		if (!copy)
			return fail(err, n, ENOMEM, "%s: out of memory%s", key, "");
		free(*at);
		*at = copy;
		return 0;
	}
	if (strcmp(key, "egress_ca") == 0) {
		if (strncmp(value, "-----BEGIN CERTIFICATE-----\n", 28) ||
		    str_copy(c->egress_ca, sizeof(c->egress_ca), value) < 0)
			return fail(err, n, EINVAL, "%s: not one PEM certificate of at most %s bytes",
				    key, "4095");
		return 0;
	}
	if (strcmp(key, "root.lower") == 0) {
		char list[CONFIG_LAYERS_MAX * (CONFIG_SERIAL_MAX + 1)], *save, *one;
		size_t k = 0;

		if (str_copy(list, sizeof(list), value) < 0)
			return fail(err, n, E2BIG, "%s: at most 8 layers%s", key, "");
		for (one = strtok_r(list, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
			if (!serial_ok(one))
				return fail(err, n, EINVAL,
					    "%s: '%s' is not a disk serial (1-20 of a-z, 0-9, '-')",
					    key, one);
			if (k == CONFIG_LAYERS_MAX)
				return fail(err, n, E2BIG, "%s: at most 8 layers%s", key, "");
			str_copy(c->root_lower[k++], sizeof(c->root_lower[0]), one);
		}
		c->nroot_lower = k;
		return 0;
	}
	if (strcmp(key, "root.upper") == 0) {
		if (!serial_ok(value))
			return fail(err, n, EINVAL,
				    "%s: '%s' is not a disk serial (1-20 of a-z, 0-9, '-')", key, value);
		str_copy(c->root_upper, sizeof(c->root_upper), value);
		return 0;
	}
	if (strcmp(key, "root.share") == 0) {
		if (!serial_ok(value))
			return fail(err, n, EINVAL,
				    "%s: '%s' is not a virtio-fs tag (1-20 of a-z, 0-9, '-')", key, value);
		str_copy(c->root_share, sizeof(c->root_share), value);
		return 0;
	}
	if (strcmp(key, "root.readonly") == 0) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, n, EINVAL, "%s: '%s' is not on or off", key, value);
		c->root_readonly = strcmp(value, "on") == 0;
		return 0;
	}
	if (str_starts_with(key, "volume.")) {
		struct config_volume *vol = &c->volumes[c->nvolumes];

		for (size_t i = 0; i < c->nvolumes; i++)
			if (strcmp(c->volumes[i].serial, key + 7) == 0)
				vol = &c->volumes[i]; /* set again: the later path wins */
		if (!serial_ok(key + 7))
			return fail(err, n, EINVAL,
				    "%s: '%s' is not a disk serial (1-20 of a-z, 0-9, '-')", key, key + 7);
		if (value[0] != '/' || strlen(value) >= sizeof(vol->path) || strstr(value, "/../") ||
		    strcmp(value, "/") == 0)
			return fail(err, n, EINVAL, "%s: '%s' is not an absolute path under /", key,
				    value);
		if (vol == &c->volumes[c->nvolumes]) {
			if (c->nvolumes == CONFIG_VOLUMES_MAX)
				return fail(err, n, E2BIG, "%s: at most 8 volumes%s", key, "");
			c->nvolumes++;
		}
		str_copy(vol->serial, sizeof(vol->serial), key + 7);
		str_copy(vol->path, sizeof(vol->path), value);
		return 0;
	}
	if (str_starts_with(key, "rlimit."))
		return rlimit_set(c, key, value, err, n);
	if (str_starts_with(key, "tmpfs."))
		return tmpfs_set(c, key, value, err, n);
	if (strcmp(key, "net.addr") == 0) {
		char a[INET_ADDRSTRLEN], *slash = strchr(value, '/');

		if (!slash || (size_t)(slash - value) >= sizeof(a) ||
		    str_to_u64(slash + 1, 32, &v) < 0 || v == 0 ||
		    (snprintf(a, sizeof(a), "%.*s", (int)(slash - value), value),
		     inet_pton(AF_INET, a, &c->net_addr) != 1))
			return fail(err, n, EINVAL, "%s: '%s' is not an IPv4 address/prefix", key,
				    value);
		c->net_prefix = (unsigned)v;
		c->net = true;
		return 0;
	}
	if (strcmp(key, "net.gw") == 0) {
		if (inet_pton(AF_INET, value, &c->net_gw) != 1)
			return fail(err, n, EINVAL, "%s: '%s' is not an IPv4 address", key, value);
		return 0;
	}
	if (strcmp(key, "pids_max") == 0) {
		if (str_to_u64(value, 4194304, &v) < 0)
			return fail(err, n, EINVAL, "%s: '%s' is not a number of processes (0: no limit)",
				    key, value);
		c->pids_max = v;
		return 0;
	}
	if (strcmp(key, "output_buffer") == 0) {
		if (str_to_u64(value, CONFIG_OUTPUT_BUFFER_MAX, &v) < 0 || v < 4096)
			return fail(err, n, EINVAL, "%s: '%s' is not a size from 4096 to 67108864 bytes",
				    key, value);
		c->output_buffer = v;
		return 0;
	}
	if (str_starts_with(key, "label.")) {
		const char *k = key + 6;
		size_t klen = strlen(k);

		for (size_t i = 0; i < klen; i++)
			if (!isalnum((unsigned char)k[i]) && !strchr("_.-", k[i]))
				klen = 0;
		if (klen == 0 || klen > CONFIG_LABEL_KEY_MAX)
			return fail(err, n, EINVAL,
				    "%s: a label key is 1-63 letters, digits, '_', '.' and '-'%s", key, "");
		if (strlen(value) > CONFIG_LABEL_VALUE_MAX || strchr(value, '\n'))
			return fail(err, n, EINVAL, "%s: a label value is one line of at most 255 bytes%s",
				    key, "");
		if (!config_env_get(c->labels, k) && c->nlabels >= CONFIG_LABELS_MAX)
			return fail(err, n, E2BIG, "%s: at most 64 labels%s", key, "");
		r = config_env_set(&c->labels, &c->nlabels, k, value);
		if (r < 0)
			return fail(err, n, -r, "%s: cannot add the label%s", key, "");
		return 0;
	}
	if (strcmp(key, "ready_port") == 0) {
		if (str_to_u64(value, UINT32_MAX - 1, &v) < 0)
			return fail(err, n, EINVAL, "%s: '%s' is not a port number (0: none)", key,
				    value);
		c->ready_port = (uint32_t)v;
		return 0;
	}
	if (str_starts_with(key, "env.")) {
		if (!env_name_ok(key + 4))
			return fail(err, n, EINVAL,
				    "%s: bad environment variable name (letters, digits and '_')%s",
				    key, "");
		r = config_env_set(&c->env, &c->envc, key + 4, value);
		if (r < 0)
			return fail(err, n, -r, "%s: cannot add to the environment (at most 4096 entries)%s",
				    key, "");
		return 0;
	}
	return fail(err, n, EINVAL, "unknown key '%s'%s", key, "");
}

int config_unquote(const char *in, char *out, char *err, size_t n)
{
	const char *p = in;
	char *o = out;

	if (*p != '"') {
		strcpy(out, in);
		return 0;
	}
	for (p++; *p && *p != '"'; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		switch (*++p) {
		case '\\': *o++ = '\\'; break;
		case '"': *o++ = '"'; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'x': {
			char hex[3] = { p[1], p[1] ? p[2] : 0, 0 };
			char *end;
			long x = strtol(hex, &end, 16);

			if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) || x == 0) {
				snprintf(err, n, "bad \\x escape (two hex digits, not 00)");
				return -EINVAL;
			}
			*o++ = (char)x;
			p += 2;
			break;
		}
		default:
			snprintf(err, n, "unknown escape '\\%c'", *p ? *p : ' ');
			return -EINVAL;
		}
	}
	if (*p != '"') {
		snprintf(err, n, "missing closing quote");
		return -EINVAL;
	}
	for (p++; *p; p++)
		if (!isspace((unsigned char)*p)) {
			snprintf(err, n, "text after the closing quote");
			return -EINVAL;
		}
	*o = '\0';
	return 0;
}

/* Applies one "key = value" statement; the line is modified in place. */
static int apply_line(kv_fn fn, void *ctx, char *line, char *err, size_t n)
{
	char *eq = strchr(line, '='), *key = line, *val, *end, *decoded;
	char why[128], small[CONFIG_SMALL];
	int r;

	if (!eq) {
		snprintf(err, n, "'%s' is not key=value", line);
		return -EINVAL;
	}
	*eq = '\0';
	for (end = eq; end > key && isspace((unsigned char)end[-1]); end--)
		;
	*end = '\0';
	for (val = eq + 1; isspace((unsigned char)*val); val++)
		;
	for (end = val + strlen(val); end > val && isspace((unsigned char)end[-1]); end--)
		;
	*end = '\0';
	if (!*key) {
		snprintf(err, n, "missing key before '='");
		return -EINVAL;
	}
	/* Decoding never lengthens a value. */
	decoded = strlen(val) < sizeof(small) ? small : malloc(strlen(val) + 1);
	if (!decoded)
		return -ENOMEM;
	r = config_unquote(val, decoded, why, sizeof(why));
	if (r < 0)
		snprintf(err, n, "%s: %s", key, why);
	else
		r = fn(ctx, key, decoded, err, n);
	if (decoded != small)
		free(decoded);
	return r;
}

static void note_error(int *first, char *err, size_t n, const char *origin, unsigned line,
		       const char *msg)
{
	log_warn(0, "%s:%u: %s", origin, line, msg);
	if (*first == 0) {
		*first = -EINVAL;
		snprintf(err, n, "%s:%u: %s", origin, line, msg);
	}
}

static int set_fn(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	return config_set(ctx, key, value, err, n);
}

int config_parse_text(struct config *c, const char *text, size_t len, const char *origin,
		      char *err, size_t n)
{
	return kv_parse_text(text, len, origin, set_fn, c, err, n);
}

int kv_parse_text(const char *text, size_t len, const char *origin, kv_fn fn, void *ctx,
		  char *err, size_t n)
{
	char msg[512], small[CONFIG_SMALL], *line;
	unsigned lineno = 0;
	int first = 0;
	size_t i = 0;

	/* No line is longer than the text: a small configuration (a clone's,
	 * in IDENTITY) is not a 64 KiB allocation, which musl maps and unmaps
	 * (~8 ms of a clone's create -> ready under TCG, the kernel's mmap
	 * and munmap code running for the first time since the restore);
	 * nor, at boot, an allocation at all (config_load). */
	line = len < sizeof(small) ? small : malloc(MIN(len, (size_t)CONFIG_VALUE_MAX) + 1);
	if (!line)
		return -ENOMEM;
	while (i < len) {
		size_t start = i, l;
		char *p;

		while (i < len && text[i] != '\n')
			i++;
		l = i - start;
		i++;
		lineno++;
		if (l > CONFIG_VALUE_MAX) {
			note_error(&first, err, n, origin, lineno, "line longer than 65536 bytes");
			continue;
		}
		memcpy(line, text + start, l);
		line[l] = '\0';
		if (memchr(line, '\0', l)) {
			note_error(&first, err, n, origin, lineno, "line contains a NUL byte");
			continue;
		}
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if (apply_line(fn, ctx, p, msg, sizeof(msg)) < 0)
			note_error(&first, err, n, origin, lineno, msg);
	}
	if (line != small)
		free(line);
	return first;
}

int config_parse_cmdline(struct config *c, const char *cmdline, char *err, size_t n)
{
	size_t len = strlen(cmdline);
	char small[CONFIG_SMALL], *word = len < sizeof(small) ? small : malloc(len + 1), msg[512];
	const char *p = cmdline;
	unsigned index = 0;
	int first = 0;

	if (!word)
		return -ENOMEM;
	/* The kernel splits its command line at spaces outside double
	 * quotes and leaves the quotes in place; do the same. */
	while (*p) {
		bool quoted = false;
		size_t w = 0;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		while (*p && (quoted || !isspace((unsigned char)*p))) {
			if (*p == '"')
				quoted = !quoted;
			word[w++] = *p++;
		}
		word[w] = '\0';
		index++;
		if (!str_starts_with(word, "sbx."))
			continue;
		if (!strchr(word, '=')) {
			snprintf(msg, sizeof(msg), "'%s' has no value", word);
			note_error(&first, err, n, "kernel command line", index, msg);
			continue;
		}
		if (str_starts_with(word, "sbx.token=")) {
			note_error(&first, err, n, "kernel command line", index,
				   "sbx.token: a token on the kernel command line is readable by every "
				   "process; put it in the configuration file");
			continue;
		}
		if (apply_line(set_fn, c, word + 4, msg, sizeof(msg)) < 0)
			note_error(&first, err, n, "kernel command line", index, msg);
	}
	if (word != small)
		free(word);
	return first;
}

int config_load_file(struct config *c, const char *path, char *err, size_t n)
{
	char small[CONFIG_SMALL], *text = small;
	size_t len = 0, cap = sizeof(small);
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, n, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	for (;;) {
		ssize_t k;

		if (len == cap) {
			char *grown = cap >= (16u << 20) ? NULL :
				      text == small ? malloc(cap * 2) : realloc(text, cap * 2);

			if (!grown) {
				snprintf(err, n, "%s: larger than 16 MiB", path);
				r = -EFBIG;
				goto out;
			}
			if (text == small)
				memcpy(grown, small, len);
			text = grown;
			cap *= 2;
		}
		k = read(fd, text + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			snprintf(err, n, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	r = config_parse_text(c, text, len, path, err, n);
out:
	if (text != small)
		free(text);
	close(fd);
	return r;
}

int config_load(struct config *c, const char *path, bool must_exist, bool cmdline, char *err,
		size_t n)
{
	char line[4096];
	int first = 0, r, fd;
	ssize_t k;

	if (cmdline && (fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC)) >= 0) {
		k = read(fd, line, sizeof(line) - 1);
		close(fd);
		if (k > 0) {
			line[k] = '\0';
			first = config_parse_cmdline(c, line, err, n);
		}
	}
	if (path) {
		char ferr[512];

		r = config_load_file(c, path, ferr, sizeof(ferr));
		if (r == -ENOENT && !must_exist)
			r = 0;
		if (r < 0 && first == 0) {
			first = r;
			snprintf(err, n, "%s", ferr);
		}
	}
	return first;
}

void kv_write(FILE *f, const char *key, const char *value)
{
	const unsigned char *p;
	bool plain = *value && !isspace((unsigned char)*value) && *value != '"';

	for (p = (const unsigned char *)value; plain && *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			plain = false;
	if (plain && !isspace(p[-1])) {
		fprintf(f, "%s = %s\n", key, value);
		return;
	}
	fprintf(f, "%s = \"", key);
	for (p = (const unsigned char *)value; *p; p++) {
		switch (*p) {
		case '\\': fputs("\\\\", f); break;
		case '"': fputs("\\\"", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	fputs("\"\n", f);
}
