/* config.json of an OCI bundle, read with jansson: see spec.h. */
#include "oci/spec.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/util.h"

static int fail(char *msg, size_t n, int code, const char *fmt, const char *a, const char *b)
{
	snprintf(msg, n, fmt, a, b);
	return -code;
}

/* Mounts a VM has of its own: the kernel's file systems, the devices,
 * and the files a container engine writes for a network namespace (the
 * VM has its own host name and no network of the engine's). */
static bool mount_provided(const char *type, const char *dest)
{
	static const char *const kernel_fs[] = { "proc", "sysfs", "devpts", "mqueue", "cgroup",
						 "cgroup2" };
	static const char *const dests[] = { "/proc", "/dev", "/dev/pts", "/dev/shm",
					     "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/run",
					     "/tmp", "/etc/hosts", "/etc/hostname",
					     "/etc/resolv.conf", "/run/.containerenv" };

	for (size_t i = 0; i < ARRAY_SIZE(kernel_fs); i++)
		if (type && strcmp(type, kernel_fs[i]) == 0)
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(dests); i++)
		if (strcmp(dest, dests[i]) == 0)
			return true;
	return false;
}

static int mounts_check(json_t *mounts, char *msg, size_t n)
{
	size_t i;
	json_t *m;

	json_array_foreach(mounts, i, m) {
		const char *dest = json_string_value(json_object_get(m, "destination"));
		const char *type = json_string_value(json_object_get(m, "type"));
		const char *src = json_string_value(json_object_get(m, "source"));

		if (!dest)
			return fail(msg, n, EINVAL, "config.json: mounts[%s] has no destination%s",
				    "", "");
		if (mount_provided(type, dest))
			continue;
		return fail(msg, n, ENOTSUP, "config.json: the mount of %s at %s is not supported "
			    "by sbx-oci (a microVM gets only its root file system from the host; "
			    "the kernel's file systems, /dev, /tmp and the engine's /etc files "
			    "are the VM's own)", src ? src : type ? type : "?", dest);
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

static json_t *read_json(const char *file, char *msg, size_t n)
{
	json_error_t je;
	json_t *j = json_load_file(file, 0, &je);

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
	    (r = mounts_check(json_object_get(j, "mounts"), msg, n)) < 0)
		goto out;
	s->memory_limit = (uint64_t)json_integer_value(json_object_get(
		json_object_get(json_object_get(json_object_get(j, "linux"), "resources"), "memory"),
		"limit"));
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
	for (size_t i = 0; s->rlimits[i]; i++)
		free(s->rlimits[i]);
	for (size_t i = 0; s->args[i]; i++)
		free(s->args[i]);
	for (size_t i = 0; s->env[i]; i++)
		free(s->env[i]);
	free(s->json);
	memset(s, 0, sizeof(*s));
}
