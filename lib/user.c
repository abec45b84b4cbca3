/* User resolution for commands: see user.h. */
#include "lib/user.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

static void fill_groups(struct user *u)
{
	int n = USER_GROUPS_MAX;

	if (getgrouplist(u->name, u->gid, u->groups, &n) < 0)
		n = USER_GROUPS_MAX; /* truncated: keep the first ones */
	u->ngroups = n;
}

int user_lookup(const char *spec, struct user *u)
{
	struct passwd pw, *res = NULL;
	char strbuf[4096];
	uint64_t id;
	bool numeric;
	int r;

	memset(u, 0, sizeof(*u));
	if (!spec || !*spec) {
		id = geteuid();
		numeric = true;
	} else {
		numeric = str_to_u64(spec, UINT32_MAX - 1, &id) == 0;
	}
	if (numeric)
		r = getpwuid_r((uid_t)id, &pw, strbuf, sizeof(strbuf), &res);
	else
		r = getpwnam_r(spec, &pw, strbuf, sizeof(strbuf), &res);
	if (r != 0 && r != ENOENT && r != ESRCH)
		return -r;
	if (!res) {
		if (!numeric)
			return -ENOENT;
		u->uid = (uid_t)id;
		u->gid = (gid_t)id;
		snprintf(u->name, sizeof(u->name), "%u", (unsigned)id);
		str_copy(u->home, sizeof(u->home), "/");
		str_copy(u->shell, sizeof(u->shell), "/bin/sh");
		u->groups[0] = u->gid;
		u->ngroups = 1;
		return 0;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	str_copy(u->name, sizeof(u->name), pw.pw_name);
	str_copy(u->home, sizeof(u->home), *pw.pw_dir ? pw.pw_dir : "/");
	str_copy(u->shell, sizeof(u->shell), *pw.pw_shell ? pw.pw_shell : "/bin/sh");
	fill_groups(u);
	return 0;
}
