/* Who a command runs as: resolves a user name or uid through /etc/passwd
 * and /etc/group (musl reads them directly; there is no NSS in a guest). */
#ifndef SBX_USER_H
#define SBX_USER_H

#include <limits.h>
#include <sys/types.h>

#define USER_GROUPS_MAX 64

struct user {
	uid_t uid;
	gid_t gid;
	char name[33];
	char home[PATH_MAX];
	char shell[PATH_MAX];
	gid_t groups[USER_GROUPS_MAX];
	int ngroups;
};

/* spec is a user name or a decimal uid; an empty spec means the user the
 * agent runs as. A uid without a passwd entry is allowed (group = uid,
 * home = /). Returns 0 or -ENOENT (no such user) / -errno. */
int user_lookup(const char *spec, struct user *u);

#endif
