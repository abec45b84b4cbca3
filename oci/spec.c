/* config.json of an OCI bundle, read with jansson: see spec.h. */
#include "oci/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/util.h"

static int fail(char *msg, size_t n, int code, const char *fmt, const char *a, const char *b)
{
	snprintf(msg, n, fmt, a, b);
	return -code;
}

/* Mounts a VM has of its own, skipped: the kernel's file systems at
 * their places, /dev and what is under it (the guest's devtmpfs, devpts,
 * /dev/shm), /run (the guest's tmpfs, moved over the root's /run: a host
 * file bound there would be hidden) and Podman's marker in it. */
static bool mount_provided(const char *type, const char *dest)
{
	static const struct { const char *type, *dest; } kernel_fs[] = {
		{ "proc", "/proc" }, { "sysfs", "/sys" }, { "devpts", "/dev/pts" },
		{ "mqueue", "/dev/mqueue" }, { "cgroup", "/sys/fs/cgroup" },
		{ "cgroup2", "/sys/fs/cgroup" },
	};
	static const char *const dests[] = { "/dev", "/dev/shm", "/run", "/run/.containerenv" };

	for (size_t i = 0; i < ARRAY_SIZE(kernel_fs); i++)
		if (type && strcmp(type, kernel_fs[i].type) == 0 &&
		    strcmp(dest, kernel_fs[i].dest) == 0)
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(dests); i++)
		if (strcmp(dest, dests[i]) == 0)
			return true;
	return false;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Options that change nothing for a VM: propagation (the guest has its
 * own mount tree), relabelling (the engine's), tmpcopyup (not done: a
 * tmpfs starts empty); for a bind mount also the defaults and atime
 * flavours, which the host's mount keeps. */
static bool option_ignored(const char *o, bool bind)
{
	static const char *const ignored[] = {
		"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
		"runbindable", "z", "Z", "tmpcopyup", "notmpcopyup",
	};
	static const char *const bind_ignored[] = {
		"relatime", "norelatime", "strictatime", "nostrictatime", "atime", "noatime",
		"diratime", "nodiratime", "rw", "suid", "dev", "exec",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
		if (strcmp(o, ignored[i]) == 0)
			return true;
	for (size_t i = 0; bind && i < ARRAY_SIZE(bind_ignored); i++)
		if (strcmp(o, bind_ignored[i]) == 0)
			return true;
	return false;
}

static int bind_read(json_t *opts, const char *src, const char *dest, struct oci_spec *s,
		     char *msg, size_t n)
{
	struct oci_bind *b = &s->binds[s->nbinds];
	size_t i;
	json_t *v;

	if (!src || src[0] != '/')
		return fail(msg, n, EINVAL, "config.json: the bind mount at %s has no absolute "
			    "source (%s)", dest, src ? src : "none");
	if (s->nbinds == OCI_BINDS_MAX)
		return fail(msg, n, E2BIG, "config.json: the bind mount at %s is one too many "
			    "(at most 16)%s", dest, "");
	memset(b, 0, sizeof(*b));
	json_array_foreach(opts, i, v) {
		const char *o = json_string_value(v);

		if (!o)
			continue;
		if (strcmp(o, "rbind") == 0)
			b->recursive = true;
		else if (strcmp(o, "ro") == 0)
			b->attr |= MOUNT_ATTR_RDONLY;
		else if (strcmp(o, "nosuid") == 0)
			b->attr |= MOUNT_ATTR_NOSUID;
		else if (strcmp(o, "nodev") == 0)
			b->attr |= MOUNT_ATTR_NODEV;
		else if (strcmp(o, "noexec") == 0)
			b->attr |= MOUNT_ATTR_NOEXEC;
		else if (strcmp(o, "bind") != 0 && !option_ignored(o, true))
			return fail(msg, n, ENOTSUP, "config.json: the bind mount at %s has the "
				    "option %s, which sbx-oci does not support", dest, o);
	}
	b->source = strdup(src);
	b->dest = strdup(dest);
	s->nbinds++;
	return 0;
}

/* A tmpfs, as the guest's tmpfs.N has it (PATH:OPTIONS), checked by the
 * guest's own parser. */
static int tmpfs_read(json_t *opts, const char *dest, struct oci_spec *s, size_t *k, char *msg,
		      size_t n)
{
	char value[CONFIG_VOLUME_PATH_MAX + 256], why[256];
	struct config c;
	size_t i, at;
	json_t *v;
	int r;

	if (*k == OCI_TMPFS_MAX)
		return fail(msg, n, E2BIG, "config.json: the tmpfs at %s is one too many (at most "
			    "8)%s", dest, "");
	at = (size_t)snprintf(value, sizeof(value), "%s:", dest);
	json_array_foreach(opts, i, v) {
		const char *o = json_string_value(v);

		if (!o || option_ignored(o, false))
			continue;
		at += (size_t)snprintf(value + at, at < sizeof(value) ? sizeof(value) - at : 0,
				       "%s%s", value[at - 1] == ':' ? "" : ",", o);
	}
	if (at >= sizeof(value))
		return fail(msg, n, E2BIG, "config.json: the tmpfs at %s has too many options%s",
			    dest, "");
	config_init(&c);
	r = config_set(&c, "tmpfs.0", value, why, sizeof(why));
	config_free(&c);
	if (r < 0)
		return fail(msg, n, EINVAL, "config.json: the tmpfs at %s: %s", dest, why);
	s->tmpfs[(*k)++] = strdup(value);
	return 0;
}

static int mounts_read(json_t *mounts, struct oci_spec *s, char *msg, size_t n)
{
	size_t i, ntmpfs = 0;
	json_t *m;
	int r;

	json_array_foreach(mounts, i, m) {
		const char *dest = json_string_value(json_object_get(m, "destination"));
		const char *type = json_string_value(json_object_get(m, "type"));
		const char *src = json_string_value(json_object_get(m, "source"));
		json_t *opts = json_object_get(m, "options"), *o;
		bool bind = type && strcmp(type, "bind") == 0;
		size_t j;

		if (!dest || dest[0] != '/' || strstr(dest, "/../") ||
		    strlen(dest) >= CONFIG_VOLUME_PATH_MAX)
			return fail(msg, n, EINVAL, "config.json: a mount's destination is not an "
				    "absolute path of less than 256 bytes (%s)%s", dest ? dest : "none",
				    "");
		if (mount_provided(type, dest))
			continue;
		/* The specification lets a bind mount go without a type. */
		json_array_foreach(opts, j, o)
			if (json_is_string(o) && (strcmp(json_string_value(o), "bind") == 0 ||
						  strcmp(json_string_value(o), "rbind") == 0) &&
			    (!type || strcmp(type, "none") == 0))
				bind = true;
		if (strcmp(dest, "/") == 0 || under(dest, "/proc") || under(dest, "/sys") ||
		    under(dest, "/dev"))
			r = fail(msg, n, ENOTSUP, "config.json: the mount at %s is not supported by "
				 "sbx-oci: /proc, /sys and /dev are the VM's own (%s)", dest,
				 type ? type : "no type");
		else if (bind && under(dest, "/run"))
			r = fail(msg, n, ENOTSUP, "config.json: the bind mount of %s at %s is not "
				 "supported by sbx-oci: /run is the VM's own tmpfs", src ? src : "?",
				 dest);
		else if (bind)
			r = bind_read(opts, src, dest, s, msg, n);
		else if (type && strcmp(type, "tmpfs") == 0)
			r = tmpfs_read(opts, dest, s, &ntmpfs, msg, n);
		else
			r = fail(msg, n, ENOTSUP, "config.json: the mount at %s of type %s is not "
				 "supported by sbx-oci (a microVM takes tmpfs mounts and bind mounts "
				 "of host paths)", dest, type ? type : "none");
		if (r < 0)
			return r;
	}
	return 0;
}

static int process_read(json_t *p, struct oci_spec *s, char *msg, size_t n)
{
	json_t *args = json_object_get(p, "args"), *env = json_object_get(p, "env");
	json_t *user = json_object_get(p, "user"), *v;
	const char *cwd = json_string_value(json_object_get(p, "cwd"));
	size_t i;

	if (!json_is_array(args) || json_array_size(args) == 0)
		return fail(msg, n, EINVAL, "config.json: process.args is missing or empty%s%s", "",
			    "");
	if (json_array_size(args) > OCI_ARGS_MAX || json_array_size(env) > OCI_ENV_MAX)
		return fail(msg, n, E2BIG, "config.json: more than 256 process.args or env%s%s", "",
			    "");
	/* `podman run --rootfs DIR -- CMD` keeps the "--" (its options end
	 * at DIR): no program is called "--", so it is taken as a separator. */
	if (json_array_size(args) > 1 && json_is_string(json_array_get(args, 0)) &&
	    strcmp(json_string_value(json_array_get(args, 0)), "--") == 0)
		json_array_remove(args, 0);
	json_array_foreach(args, i, v) {
		if (!json_is_string(v))
			return fail(msg, n, EINVAL, "config.json: process.args holds a non-string%s%s",
				    "", "");
		s->args[i] = strdup(json_string_value(v));
	}
	json_array_foreach(env, i, v) {
		if (!json_is_string(v) || !strchr(json_string_value(v), '='))
			return fail(msg, n, EINVAL, "config.json: process.env holds an entry that is "
				    "not NAME=value%s%s", "", "");
		s->env[i] = strdup(json_string_value(v));
	}
	str_copy(s->cwd, sizeof(s->cwd), cwd && *cwd ? cwd : "/");
	snprintf(s->user, sizeof(s->user), "%lld",
		 (long long)json_integer_value(json_object_get(user, "uid")));
	s->terminal = json_is_true(json_object_get(p, "terminal"));
	return 0;
}

/* A limit as the guest's configuration writes it: a negative one (-1, as
 * engines write "unlimited") is unlimited. */
static void rlim_text(char *out, size_t n, json_int_t v)
{
	if (v < 0)
		snprintf(out, n, "unlimited");
	else
		snprintf(out, n, "%lld", (long long)v);
}

/* process.rlimits, as the guest's configuration has them (rlimit.nofile
 * = SOFT:HARD): checked here by the guest's own parser, so that a limit
 * the VM would skip is an error of create. */
static int rlimits_read(json_t *rls, struct oci_spec *s, char *msg, size_t n)
{
	struct config c;
	char key[64], value[64], soft_s[24], hard_s[24], why[256];
	size_t i, k = 0;
	json_t *rl;
	int r = 0;

	config_init(&c);
	json_array_foreach(rls, i, rl) {
		const char *type = json_string_value(json_object_get(rl, "type"));
		json_t *soft = json_object_get(rl, "soft"), *hard = json_object_get(rl, "hard");

		if (!type || strncmp(type, "RLIMIT_", 7) != 0 || strlen(type) > 40 ||
		    !json_is_integer(soft) || !json_is_integer(hard)) {
			r = fail(msg, n, EINVAL, "config.json: process.rlimits[%s] is not {type: "
				 "RLIMIT_..., soft: N, hard: N}%s", type ? type : "?", "");
			break;
		}
		snprintf(key, sizeof(key), "rlimit.%s", type + 7);
		for (char *p = key; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		rlim_text(soft_s, sizeof(soft_s), json_integer_value(soft));
		rlim_text(hard_s, sizeof(hard_s), json_integer_value(hard));
		snprintf(value, sizeof(value), "%s:%s", soft_s, hard_s);
		if (config_set(&c, key, value, why, sizeof(why)) < 0) {
			r = fail(msg, n, EINVAL, "config.json: process.rlimits %s: %s", type, why);
			break;
		}
		if (k == OCI_RLIMITS_MAX) {
			r = fail(msg, n, E2BIG, "config.json: more than 16 process.rlimits%s%s", "", "");
			break;
		}
		snprintf(key, sizeof(key), "%s=%s", type + 7, value);
		for (char *p = key; *p != '='; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		s->rlimits[k++] = strdup(key);
	}
	config_free(&c);
	return r;
}

/* jansson's integers are json_int_t (int64_t) and it refuses the whole
 * text when one is larger. Engines write the runtime specification's
 * uint64 "unlimited" (an rlimit, a memory or swap limit) as 18446744073709551615,
 * UINT64_MAX: read it, at the very place jansson points at, as -1, the
 * same "unlimited" in the specification's signed fields, padded with
 * spaces so that every other byte stays where it was. Any other integer
 * too large for int64 is still an error, naming it. */
#define UINT64_MAX_TEXT "18446744073709551615"

static bool unlimited_rewrite(char *text, size_t len, const json_error_t *je)
{
	size_t end = (size_t)je->position, start = end, k = strlen(UINT64_MAX_TEXT);

	if (json_error_code(je) != json_error_numeric_overflow || end > len)
		return false;
	while (start > 0 && text[start - 1] >= '0' && text[start - 1] <= '9')
		start--;
	if (end - start != k || memcmp(text + start, UINT64_MAX_TEXT, k) != 0 ||
	    (start > 0 && text[start - 1] == '-'))
		return false;
	memset(text + start, ' ', k);
	memcpy(text + start, "-1", 2);
	return true;
}

#define CONFIG_JSON_MAX (16u << 20)

static json_t *read_json(const char *file, char *msg, size_t n)
{
	json_error_t je;
	json_t *j = NULL;
	char *text = NULL;
	const char *why = NULL;
	struct stat st;
	ssize_t len = -1;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (st.st_size > CONFIG_JSON_MAX)
		why = "larger than 16 MiB";
	else if (!(text = malloc((size_t)st.st_size + 1)))
		why = "out of memory";
	else if ((len = read(fd, text, (size_t)st.st_size + 1)) < 0)
		why = strerror(errno);
	else if (len > st.st_size)
		why = "changed while it was read";
	if (fd >= 0)
		close(fd);
	if (why) {
		snprintf(msg, n, "%s: %s", file, why);
		free(text);
		return NULL;
	}
	while (!(j = json_loadb(text, (size_t)len, 0, &je)) &&
	       unlimited_rewrite(text, (size_t)len, &je))
		;
	free(text);
	if (!j)
		snprintf(msg, n, "%s: %s (line %d)", file, je.text, je.line);
	else if (!json_is_object(j)) {
		snprintf(msg, n, "%s: not a JSON object", file);
		json_decref(j);
		j = NULL;
	}
	return j;
}

int oci_spec_load(const char *bundle, struct oci_spec *s, char *msg, size_t n)
{
	char file[PATH_MAX];
	json_t *j, *root, *p, *ann;
	const char *path, *host;
	int r;

	memset(s, 0, sizeof(*s));
	snprintf(file, sizeof(file), "%s/config.json", bundle);
	if (!(j = read_json(file, msg, n)))
		return -EINVAL;
	root = json_object_get(j, "root");
	path = json_string_value(json_object_get(root, "path"));
	if (!path) {
		r = fail(msg, n, EINVAL, "%s: root.path is missing%s", file, "");
		goto out;
	}
	if (path[0] == '/')
		str_copy(s->rootfs, sizeof(s->rootfs), path);
	else
		snprintf(s->rootfs, sizeof(s->rootfs), "%s/%s", bundle, path);
	s->readonly = json_is_true(json_object_get(root, "readonly"));
	host = json_string_value(json_object_get(j, "hostname"));
	if (host && *host) {
		struct config c;
		char why[256];

		config_init(&c);
		r = config_set(&c, "hostname", host, why, sizeof(why));
		config_free(&c);
		if (r < 0) {
			r = fail(msg, n, EINVAL, "%s: %s", file, why);
			goto out;
		}
		str_copy(s->hostname, sizeof(s->hostname), host);
	}
	p = json_object_get(j, "process");
	if (!json_is_object(p)) {
		r = fail(msg, n, EINVAL, "%s: no process to run (process is missing)%s", file, "");
		goto out;
	}
	if ((r = process_read(p, s, msg, n)) < 0 ||
	    (r = rlimits_read(json_object_get(p, "rlimits"), s, msg, n)) < 0 ||
	    (r = mounts_read(json_object_get(j, "mounts"), s, msg, n)) < 0)
		goto out;
	{
		/* A negative limit (-1) is none, as the specification has it. */
		json_int_t mem = json_integer_value(json_object_get(json_object_get(json_object_get(
			json_object_get(j, "linux"), "resources"), "memory"), "limit"));

		s->memory_limit = mem > 0 ? (uint64_t)mem : 0;
	}
	{
		json_t *nss = json_object_get(json_object_get(j, "linux"), "namespaces"), *ns;
		size_t i;

		json_array_foreach(nss, i, ns) {
			const char *type = json_string_value(json_object_get(ns, "type"));
			const char *nsp = json_string_value(json_object_get(ns, "path"));

			if (type && nsp && strcmp(type, "network") == 0)
				str_copy(s->netns, sizeof(s->netns), nsp);
		}
	}
	ann = json_object_get(j, "annotations");
	s->json = json_is_object(ann) ? json_dumps(ann, JSON_COMPACT) : strdup("{}");
	{
		const char *cri = json_string_value(json_object_get(ann,
			"io.kubernetes.cri.container-type"));
		const char *crio = json_string_value(json_object_get(ann,
			"io.kubernetes.cri-o.ContainerType"));

		s->pod_sandbox = (cri && strcmp(cri, "sandbox") == 0) ||
				 (crio && strcmp(crio, "sandbox") == 0);
	}
	r = 0;
out:
	json_decref(j);
	return r;
}

int oci_process_load(const char *file, struct oci_spec *s, char *msg, size_t n)
{
	json_t *j = read_json(file, msg, n);
	int r;

	if (!j)
		return -EINVAL;
	for (size_t i = 0; s->args[i]; i++)
		free(s->args[i]), s->args[i] = NULL;
	for (size_t i = 0; s->env[i]; i++)
		free(s->env[i]), s->env[i] = NULL;
	r = process_read(j, s, msg, n);
	json_decref(j);
	return r;
}

void oci_spec_free(struct oci_spec *s)
{
	for (size_t i = 0; i < s->nbinds; i++) {
		free(s->binds[i].source);
		free(s->binds[i].dest);
	}
	for (size_t i = 0; s->tmpfs[i]; i++)
		free(s->tmpfs[i]);
	for (size_t i = 0; s->rlimits[i]; i++)
		free(s->rlimits[i]);
	for (size_t i = 0; s->args[i]; i++)
		free(s->args[i]);
	for (size_t i = 0; s->env[i]; i++)
		free(s->env[i]);
	free(s->json);
	memset(s, 0, sizeof(*s));
}
